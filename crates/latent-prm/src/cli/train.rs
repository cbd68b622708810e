//! `latent prm train`: the latent reward model trained on collected paths.

use burn::tensor::backend::AutodiffBackend;
use latent_core::cli::{CommonArgs, Flag, JobResult};
use latent_core::train::{AutodiffDevicesJob, StopFlag, TrainingJob};
use latent_core::DeviceList;

use crate::config::PrmRunConfig;
use crate::paths::CollectionMeta;
use crate::train::{parameter_counts, train_on, TrainOptions};

const JOB: &str = "latent prm train";

/// `latent prm train`: loads the config (with `--set`, `--device`, `--output-dir`) and trains,
/// or with `--dry-run` prints the counts.
pub fn run(c: CommonArgs) -> JobResult {
    c.accept(JOB, &Flag::ALL)?;
    let overrides = c.overrides(Some("training.device"), "training.output_dir");
    let config = PrmRunConfig::load(c.config(JOB)?, &overrides)?;
    if c.dry_run {
        return dry_run(&config);
    }
    let devices: DeviceList = c.device_list(&config.training.device).parse()?;
    let options = TrainOptions {
        resume: c.resume_dir(&config.training.output_dir)?,
        progress: !c.quiet,
        stop: Some(StopFlag::ctrl_c()?),
    };
    train(config, options, &devices)
}

/// Prints the resolved config and the trainable parameters per group.
pub fn dry_run(config: &PrmRunConfig) -> JobResult {
    let latent_dim = match config.model.latent_dim {
        Some(d) => d,
        None => CollectionMeta::read(&config.data.train)?.hidden,
    };
    let (backbone, head, projection) = parameter_counts(config, latent_dim)?;
    println!("{}", serde_json::to_string_pretty(config)?);
    println!("backbone: {backbone}");
    println!("head: {head}");
    println!("input projection: {projection} (thoughts of width {latent_dim})");
    println!("trainable total: {}", backbone + head + projection);
    Ok(())
}

/// Trains on `devices` (one data-parallel replica each) and prints the report as JSON.
pub fn train(config: PrmRunConfig, options: TrainOptions, devices: &DeviceList) -> JobResult {
    let checkpointing = config.training.checkpointing;
    let job = Job(options, config);
    devices.run(TrainingJob { checkpointing, job })?
}

struct Job(TrainOptions, PrmRunConfig);

impl AutodiffDevicesJob for Job {
    type Output = JobResult;

    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> JobResult {
        let Job(options, config) = self;
        let (_, report) = train_on::<B>(&config, &options, &devices)?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        Ok(())
    }
}
