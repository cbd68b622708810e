//! `latent hrpo demo`: the CPU-sized GRPO / HRPO demo.

use std::path::PathBuf;

use burn::backend::Autodiff;
use latent_core::cli::{print_table, CommonArgs, JobResult};
use latent_core::CpuBackend;

use crate::demo::{run_demo, DemoConfig, Variant};

const JOB: &str = "latent hrpo demo";

/// Arguments of `latent hrpo demo` (unset flags keep the documented run's values).
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// The common flags (`--output-dir`, `--quiet`, `--dry-run` apply).
    #[command(flatten)]
    pub common: CommonArgs,
    /// Seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Problems of the supervised warm start.
    #[arg(long)]
    pub sft_examples: Option<usize>,
    /// Epochs of the warm start.
    #[arg(long)]
    pub sft_epochs: Option<usize>,
    /// Drop the last reasoning step from the chain of thought (CODI's preprocessing; the default
    /// keeps it).
    #[arg(long)]
    pub drop_last_step: bool,
    /// Updates of each RL run.
    #[arg(long)]
    pub rl_updates: Option<usize>,
    /// Completions per prompt.
    #[arg(long)]
    pub group_size: Option<usize>,
    /// Learning rate of the model's weights.
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// Rollout temperature.
    #[arg(long)]
    pub temperature: Option<f32>,
    /// KL weight β.
    #[arg(long)]
    pub beta: Option<f64>,
    /// Prompts per micro-batch.
    #[arg(long)]
    pub prompts_per_micro_batch: Option<usize>,
    /// RL variants to run, comma-separated: grpo, hrpo, projection (default: all three).
    #[arg(long, value_delimiter = ',')]
    pub variants: Option<Vec<Variant>>,
    /// Held-out problems.
    #[arg(long)]
    pub test_examples: Option<usize>,
}

impl DemoArgs {
    /// The demo's settings: the documented run's, changed by the flags given.
    pub fn config(&self) -> DemoConfig {
        let (a, d) = (self, DemoConfig::default());
        DemoConfig {
            output_dir: a
                .common
                .output_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("runs/grpo-demo")),
            seed: a.seed.unwrap_or(d.seed),
            sft_examples: a.sft_examples.unwrap_or(d.sft_examples),
            sft_epochs: a.sft_epochs.unwrap_or(d.sft_epochs),
            keep_last_step: d.keep_last_step && !a.drop_last_step,
            rl_updates: a.rl_updates.unwrap_or(d.rl_updates),
            group_size: a.group_size.unwrap_or(d.group_size),
            learning_rate: a.learning_rate.unwrap_or(d.learning_rate),
            temperature: a.temperature.unwrap_or(d.temperature),
            test_examples: a.test_examples.unwrap_or(d.test_examples),
            beta: a.beta.unwrap_or(d.beta),
            prompts_per_micro_batch: a
                .prompts_per_micro_batch
                .unwrap_or(d.prompts_per_micro_batch),
            variants: a.variants.clone().unwrap_or_else(|| d.variants.clone()),
            ..d
        }
    }

    /// Runs the demo on the CPU (or prints its settings with `--dry-run`).
    pub fn run(self) -> JobResult {
        self.common.run_settings(JOB, &self.config(), demo)
    }
}

/// Runs the demo with `cfg` and prints its table and wall time.
pub fn demo(cfg: &DemoConfig, progress: bool) -> JobResult {
    let report = run_demo::<Autodiff<CpuBackend>>(cfg, &Default::default(), progress)?;
    print_table(
        &report.markdown(),
        report.seconds,
        &cfg.output_dir.join("results.md"),
    );
    Ok(())
}
