//! `latent codi phase2`: Phase 2 of hybrid CODI (docs/codi-hybrid.md).

use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::prelude::*;
use latent_core::cli::{CommonArgs, Flag, JobResult};
use latent_core::train::{total_updates, StopFlag};
use latent_core::{DeviceList, DevicesJob};

use crate::config::CodiRunConfig;
use crate::hybrid::batch::SwitchLabels;
use crate::hybrid::phase2::{default_phase2_config, run_phase2, HybridTraining, Phase2Overrides};
use crate::hybrid::schema::read_hybrid_file;
use crate::run::{micro_batching, TrainOptions};

const JOB: &str = "latent codi phase2";

/// Arguments of `latent codi phase2` (the design document's flag names, with `-` spellings as
/// aliases; `--output_dir` is the common `--output-dir`).
#[derive(clap::Args, Debug)]
pub struct Phase2Args {
    /// The common flags (`--config` is optional here).
    #[command(flatten)]
    pub common: CommonArgs,
    /// Base model: a local directory or hub id.
    #[arg(long = "model_name_or_path", alias = "model-name-or-path")]
    pub model_name_or_path: Option<String>,
    /// A saved CODI model directory (`final_model`) to start from.
    #[arg(long = "restore_from", alias = "restore-from")]
    pub restore_from: Option<PathBuf>,
    /// The Phase 1 JSON file.
    #[arg(long = "hybrid_data_path", alias = "hybrid-data-path")]
    pub hybrid_data_path: PathBuf,
    /// Epochs.
    #[arg(long = "num_train_epochs", alias = "num-train-epochs")]
    pub num_train_epochs: Option<usize>,
    /// Examples per micro-batch.
    #[arg(
        long = "per_device_train_batch_size",
        alias = "per-device-train-batch-size"
    )]
    pub per_device_train_batch_size: Option<usize>,
    /// Peak learning rate.
    #[arg(long = "learning_rate", alias = "learning-rate")]
    pub learning_rate: Option<f64>,
    /// Thoughts of plain CODI evaluation of the result.
    #[arg(long = "num_latent", alias = "num-latent")]
    pub num_latent: Option<usize>,
    /// Inner width of a new projection.
    #[arg(long = "prj_dim", alias = "prj-dim")]
    pub prj_dim: Option<usize>,
    /// Share of samples trained as pure explicit CoT (drawn per epoch).
    #[arg(
        long = "hybrid_cot_only_ratio",
        alias = "hybrid-cot-only-ratio",
        default_value_t = 0.2
    )]
    pub hybrid_cot_only_ratio: f64,
    /// Also distil each `<eot>` towards the teacher's state at the end of the replaced steps.
    #[arg(long = "eot_distill", alias = "eot-distill")]
    pub eot_distill: bool,
    /// Switch predictions trained on entropy-rule samples: all, boundaries, off.
    #[arg(long = "switch_labels", alias = "switch-labels", default_value = "all")]
    pub switch_labels: SwitchLabels,
    /// β: weight of the distillation term.
    #[arg(long = "distill_loss_factor", alias = "distill-loss-factor")]
    pub distill_loss_factor: Option<f64>,
    /// γ: weight of the CE on the full explicit sequence.
    #[arg(long = "ref_loss_factor", alias = "ref-loss-factor")]
    pub ref_loss_factor: Option<f64>,
    /// Train in bf16 with f32 master weights (`training.precision: bf16`).
    #[arg(long)]
    pub bf16: bool,
}

impl Phase2Args {
    /// The run config: `--config` (with `--set`, `--device`) or Phase 2's defaults, with the flags
    /// applied.
    pub fn resolve(&self) -> Result<CodiRunConfig, Box<dyn std::error::Error>> {
        let c = &self.common;
        let overrides = c.overrides(Some("training.device"), "training.output_dir");
        let base = match &c.config {
            Some(path) => CodiRunConfig::load(path, &overrides)?,
            None => {
                latent_core::config_file::apply_overrides(&default_phase2_config(), &overrides)?
            }
        };
        let config = Phase2Overrides {
            model_name_or_path: self.model_name_or_path.clone(),
            restore_from: self.restore_from.clone(),
            output_dir: c.output_dir.clone(),
            num_train_epochs: self.num_train_epochs,
            per_device_train_batch_size: self.per_device_train_batch_size,
            learning_rate: self.learning_rate,
            num_latent: self.num_latent,
            prj_dim: self.prj_dim,
            distill_loss_factor: self.distill_loss_factor,
            ref_loss_factor: self.ref_loss_factor,
            bf16: self.bf16,
        }
        .apply(base);
        config.validate(Path::new("<command line>"), &[])?;
        Ok(config)
    }

    /// Phase 2's own settings beside the run config.
    pub fn hybrid(&self) -> HybridTraining {
        HybridTraining {
            cot_only_ratio: self.hybrid_cot_only_ratio,
            eot_distill: self.eot_distill,
            switch_labels: self.switch_labels,
        }
    }

    /// Resolves the config and trains (or prints it with `--dry-run`).
    pub fn run(self) -> JobResult {
        let c = &self.common;
        c.accept(JOB, &Flag::ALL)?;
        let config = self.resolve()?;
        let devices: DeviceList = c.device_list(&config.training.device).parse()?;
        if c.dry_run {
            return dry_run(
                &config,
                &self.hybrid_data_path,
                self.hybrid(),
                devices.specs().len(),
            );
        }
        let options = TrainOptions {
            resume: c.resume_latest(JOB, &config.training.output_dir)?,
            progress: !c.quiet,
            stop: Some(StopFlag::ctrl_c()?),
        };
        phase2(
            config,
            &self.hybrid_data_path,
            self.hybrid(),
            options,
            &devices,
        )
    }
}

/// Prints the resolved config, the hybrid samples of `hybrid_data` and the updates per epoch
/// (before preprocessing drops samples longer than the model takes; the model is not loaded).
pub fn dry_run(
    config: &CodiRunConfig,
    hybrid_data: &Path,
    hybrid: HybridTraining,
    replicas: usize,
) -> JobResult {
    let file = read_hybrid_file(hybrid_data)?;
    let samples = config
        .data
        .max_train_samples
        .map_or(file.samples.len(), |m| m.min(file.samples.len()));
    let (micro, accumulation) = micro_batching(config, replicas)?;
    let batches = samples.div_ceil(micro);
    println!("{}", serde_json::to_string_pretty(config)?);
    println!(
        "{}",
        serde_json::json!({
            "hybrid_data_path": hybrid_data,
            "hybrid": hybrid,
            "samples": samples,
            "replicas": replicas,
            "micro_batch": micro,
            "accumulation": accumulation,
            "updates_per_epoch": total_updates(1, batches, accumulation),
            "updates": total_updates(config.training.epochs, batches, accumulation),
        })
    );
    Ok(())
}

/// Trains Phase 2 with `config` on the samples of `hybrid_data` and prints the report as JSON.
pub fn phase2(
    config: CodiRunConfig,
    hybrid_data: &Path,
    hybrid: HybridTraining,
    options: TrainOptions,
    devices: &DeviceList,
) -> JobResult {
    devices.run(Job {
        config,
        hybrid_data: hybrid_data.into(),
        hybrid,
        options,
    })?
}

struct Job {
    config: CodiRunConfig,
    hybrid_data: PathBuf,
    hybrid: HybridTraining,
    options: TrainOptions,
}

impl DevicesJob for Job {
    type Output = JobResult;

    fn run<B: Backend>(self, devices: Vec<B::Device>) -> JobResult {
        let (_, report) = run_phase2::<Autodiff<B>>(
            &self.config,
            &self.hybrid_data,
            &self.hybrid,
            &self.options,
            &devices,
        )?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        Ok(())
    }
}
