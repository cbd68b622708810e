//! `latent sgdd train`: SGDD on the shared training loop.

use burn::module::Module;
use burn::tensor::backend::AutodiffBackend;
use latent_core::cli::{CommonArgs, Flag, JobResult};
use latent_core::train::{total_updates, AutodiffDevicesJob, StopFlag, TrainingJob};
use latent_core::{CpuBackend, DeviceList};

use crate::config::RunConfig;
use crate::data::split_pairs;
use crate::decoder::{EmbeddingInit, SgddModel};
use crate::encoder::SemanticEncoder;
use crate::train::{build_model, run_training_on};

const JOB: &str = "latent sgdd train";

/// `latent sgdd train`: loads the config (with `--set`, `--output-dir`) and trains on `--devices`
/// / `--device` (default cpu), or with `--dry-run` prints the counts.
pub fn run(c: CommonArgs) -> JobResult {
    c.accept(JOB, &Flag::ALL)?;
    let config = RunConfig::load(c.config(JOB)?, &c.overrides(None, "train.out_dir"))?;
    let devices: DeviceList = c.device_list("cpu").parse()?;
    if c.dry_run {
        return dry_run(&config, devices.specs().len());
    }
    let resume = c.resume_dir(&config.train.out_dir)?;
    train(config, resume, !c.quiet, &devices)
}

/// Prints the resolved config, the parameter counts (the encoder is loaded; the decoder is built
/// on the CPU, not trained) and the optimizer updates per epoch from the pairs before the
/// `max_len` filter.
pub fn dry_run(config: &RunConfig, replicas: usize) -> JobResult {
    let device = Default::default();
    let encoder = SemanticEncoder::<CpuBackend>::load(&config.encoder_path()?, &device)?;
    let model: SgddModel<CpuBackend> =
        build_model(config, &encoder, EmbeddingInit::Random, &device);
    let (train, valid) = split_pairs(config)?;
    let t = &config.train;
    let batches = train.len().div_ceil(t.batch_size.max(1));
    println!("{}", serde_json::to_string_pretty(config)?);
    println!(
        "{}",
        serde_json::json!({
            "encoder_parameters": encoder.model.num_params(),
            "trainable_parameters": model.num_params(),
            "train_pairs": train.len(),
            "held_out_pairs": valid.len(),
            "batches_per_epoch": batches,
            "updates_per_epoch": total_updates(1, batches, t.accumulation),
            "updates": total_updates(t.epochs, batches, t.accumulation),
            "replicas": replicas,
        })
    );
    Ok(())
}

/// Trains with `config` on `devices` (one data-parallel replica each), from `resume` when given,
/// and prints the JSON summary.
pub fn train(
    config: RunConfig,
    resume: Option<std::path::PathBuf>,
    progress: bool,
    devices: &DeviceList,
) -> JobResult {
    let checkpointing = config.train.checkpointing;
    let job = Train {
        config,
        resume,
        progress,
    };
    Ok(devices.run(TrainingJob { checkpointing, job })??)
}

struct Train {
    config: RunConfig,
    resume: Option<std::path::PathBuf>,
    progress: bool,
}

impl AutodiffDevicesJob for Train {
    type Output = crate::Result<()>;

    fn run<A: AutodiffBackend>(self, devices: Vec<A::Device>) -> Self::Output {
        let stop = StopFlag::ctrl_c()?;
        let outcome = run_training_on::<A>(
            &self.config,
            self.resume.as_deref(),
            &devices,
            self.progress,
            Some(&stop),
        )?;
        println!(
            "{}",
            serde_json::json!({
                "encoder_parameters": outcome.params.encoder,
                "trainable_parameters": outcome.params.trainable,
                "updates": outcome.updates,
                "best": {"key": outcome.best.key, "value": outcome.best.value},
                "last_valid": outcome.last_valid.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect::<serde_json::Map<String, serde_json::Value>>(),
                "export": outcome.export,
            })
        );
        Ok(())
    }
}
