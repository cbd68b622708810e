//! `latent codi phase1`: Phase 1 of hybrid CODI (docs/codi-hybrid.md).

use std::path::PathBuf;

use burn::prelude::*;
use latent_core::cli::{CliError, CommonArgs, Flag, JobResult};
use latent_core::BackendJob;

use crate::config::DataFormat;
use crate::hybrid::phase1::{run_phase1, Phase1Config};
use crate::run::load_problems;

const JOB: &str = "latent codi phase1";

/// The file Phase 1 writes under `--output-dir` when `--output_path` is not given.
pub const HYBRID_DATA_FILE: &str = "hybrid_training_data.json";

/// Arguments of `latent codi phase1` (the design document's flag names, with `-` spellings as
/// aliases).
#[derive(clap::Args, Debug)]
pub struct Phase1Args {
    /// The common flags (`--device`, `--output-dir`, `--dry-run` apply).
    #[command(flatten)]
    pub common: CommonArgs,
    /// The CoT-capable saved model directory.
    #[arg(long = "model_path", alias = "model-path")]
    pub model_path: PathBuf,
    /// GSM8k-Aug-format training data.
    #[arg(long = "data_path", alias = "data-path")]
    pub data_path: PathBuf,
    /// `icot` or `icot_nl`.
    #[arg(long = "data_format", alias = "data-format", default_value = "icot")]
    pub data_format: String,
    /// Where the JSON file goes.
    #[arg(long = "output_path", alias = "output-path")]
    pub output_path: Option<PathBuf>,
    /// Use only the first N problems.
    #[arg(long = "max_samples", alias = "max-samples")]
    pub max_samples: Option<usize>,
    /// Share of entropy-guided samples.
    #[arg(long = "entropy_ratio", alias = "entropy-ratio", default_value_t = 0.5)]
    pub entropy_ratio: f64,
    /// Share of random samples (the rest is explicit).
    #[arg(long = "random_ratio", alias = "random-ratio", default_value_t = 0.3)]
    pub random_ratio: f64,
    /// Steps below this quantile of all step entropies become latent.
    #[arg(
        long = "latent_quantile",
        alias = "latent-quantile",
        default_value_t = 0.5
    )]
    pub latent_quantile: f64,
    /// Thoughts per latent step.
    #[arg(
        long = "latents_per_step",
        alias = "latents-per-step",
        default_value_t = 2
    )]
    pub latents_per_step: usize,
    /// Largest run of thoughts.
    #[arg(
        long = "max_latent_steps",
        alias = "max-latent-steps",
        default_value_t = 6
    )]
    pub max_latent_steps: usize,
    /// Seed of the strategy draws.
    #[arg(long, default_value_t = 11)]
    pub seed: u64,
    /// Samples per forward pass.
    #[arg(long = "batch_size", alias = "batch-size", default_value_t = 32)]
    pub batch_size: usize,
}

impl Phase1Args {
    /// Phase 1's settings.
    pub fn config(&self) -> Phase1Config {
        Phase1Config {
            entropy_ratio: self.entropy_ratio,
            random_ratio: self.random_ratio,
            latent_quantile: self.latent_quantile,
            latents_per_step: self.latents_per_step,
            max_latent_steps: self.max_latent_steps,
            seed: self.seed,
            batch_size: self.batch_size,
        }
    }

    /// The output file: `--output_path`, else `<--output-dir>/hybrid_training_data.json`.
    pub fn output_path(&self) -> Result<PathBuf, CliError> {
        match (&self.output_path, &self.common.output_dir) {
            (Some(path), _) => Ok(path.clone()),
            (None, Some(dir)) => Ok(dir.join(HYBRID_DATA_FILE)),
            (None, None) => Err(CliError::Missing {
                job: JOB.into(),
                flag: "--output_path (or --output-dir)",
            }),
        }
    }

    /// Runs Phase 1 on `--device` (default cpu).
    pub fn run(self) -> JobResult {
        let c = &self.common;
        c.accept(JOB, &[Flag::Device, Flag::OutputDir, Flag::DryRun])?;
        let device = c.device_spec()?;
        let output = self.output_path()?;
        let format: DataFormat = serde_json::from_value(serde_json::json!(self.data_format))?;
        if c.dry_run {
            let problems = load_problems(&self.data_path, format, self.max_samples)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "model_path": self.model_path, "data_path": self.data_path,
                    "problems": problems.len(), "output_path": output,
                    "config": self.config(),
                }))?
            );
            return Ok(());
        }
        device.run(Job {
            args: self,
            format,
            output,
        })?
    }
}

struct Job {
    args: Phase1Args,
    format: DataFormat,
    output: PathBuf,
}

impl BackendJob for Job {
    type Output = JobResult;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        let Job {
            args,
            format,
            output,
        } = self;
        let separator = if matches!(format, DataFormat::IcotNl | DataFormat::IcotNlHf) {
            ". "
        } else {
            " "
        };
        let problems = load_problems(&args.data_path, format, args.max_samples)?;
        let summary = run_phase1::<B>(
            &args.model_path,
            &problems,
            separator,
            &args.config(),
            &output,
            &args.data_path.display().to_string(),
            &device,
        )?;
        println!("{}", serde_json::to_string_pretty(&summary)?);
        println!("wrote {}", output.display());
        Ok(())
    }
}
