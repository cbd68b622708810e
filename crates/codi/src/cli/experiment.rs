//! `latent codi experiment`: the CPU-sized CODI experiment.

use std::path::PathBuf;

use burn::backend::Autodiff;
use latent_core::cli::{print_table, CommonArgs, JobResult};
use latent_core::CpuBackend;

use crate::experiment::{run_experiment, ExperimentConfig};

const JOB: &str = "latent codi experiment";

/// Arguments of `latent codi experiment` (unset flags keep the documented run's values).
#[derive(clap::Args, Debug)]
pub struct ExperimentArgs {
    /// The common flags (`--output-dir`, `--quiet`, `--dry-run` apply).
    #[command(flatten)]
    pub common: CommonArgs,
    /// Seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Equations per problem.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Largest operand.
    #[arg(long)]
    pub operand_max: Option<u64>,
    /// Largest intermediate value.
    #[arg(long)]
    pub max_value: Option<u64>,
    /// Training problems.
    #[arg(long)]
    pub train_examples: Option<usize>,
    /// Test problems.
    #[arg(long)]
    pub test_examples: Option<usize>,
    /// Model width.
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Blocks.
    #[arg(long)]
    pub layers: Option<usize>,
    /// CoT-SFT epochs.
    #[arg(long)]
    pub cot_epochs: Option<usize>,
    /// CODI epochs.
    #[arg(long)]
    pub codi_epochs: Option<usize>,
    /// Batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// CoT/No-CoT learning rate.
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// CODI learning rate.
    #[arg(long)]
    pub codi_learning_rate: Option<f64>,
    /// β.
    #[arg(long)]
    pub distill_loss_factor: Option<f64>,
    /// Training numerics: f32, bf16 or f16 (f32 master weights for bf16/f16).
    #[arg(long)]
    pub precision: Option<latent_core::train::Precision>,
}

impl ExperimentArgs {
    /// The experiment's settings: the documented run's, changed by the flags given.
    pub fn config(&self) -> ExperimentConfig {
        let (a, d) = (self, ExperimentConfig::default());
        ExperimentConfig {
            output_dir: a
                .common
                .output_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("runs/codi-experiment")),
            seed: a.seed.unwrap_or(d.seed),
            steps: a.steps.unwrap_or(d.steps),
            operand_max: a.operand_max.unwrap_or(d.operand_max),
            max_value: a.max_value.unwrap_or(d.max_value),
            train_examples: a.train_examples.unwrap_or(d.train_examples),
            test_examples: a.test_examples.unwrap_or(d.test_examples),
            hidden: a.hidden.unwrap_or(d.hidden),
            layers: a.layers.unwrap_or(d.layers),
            cot_epochs: a.cot_epochs.unwrap_or(d.cot_epochs),
            codi_epochs: a.codi_epochs.unwrap_or(d.codi_epochs),
            batch_size: a.batch_size.unwrap_or(d.batch_size),
            learning_rate: a.learning_rate.unwrap_or(d.learning_rate),
            codi_learning_rate: a.codi_learning_rate.unwrap_or(d.codi_learning_rate),
            distill_loss_factor: a.distill_loss_factor.unwrap_or(d.distill_loss_factor),
            precision: a.precision.unwrap_or(d.precision),
            ..d
        }
    }

    /// Runs the experiment on the CPU (or prints its settings with `--dry-run`).
    pub fn run(self) -> JobResult {
        self.common.run_settings(JOB, &self.config(), experiment)
    }
}

/// Runs the experiment with `cfg` and prints its table and wall time.
pub fn experiment(cfg: &ExperimentConfig, progress: bool) -> JobResult {
    let report = run_experiment::<Autodiff<CpuBackend>>(cfg, &Default::default(), progress)?;
    print_table(
        &report.markdown(),
        report.seconds,
        &cfg.output_dir.join("results.md"),
    );
    Ok(())
}
