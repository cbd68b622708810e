//! `latent codi pipeline`: the hybrid CODI pipeline at CPU size.

use std::path::PathBuf;

use burn::backend::Autodiff;
use latent_core::cli::{CommonArgs, JobResult};
use latent_core::CpuBackend;

use crate::hybrid::batch::SwitchLabels;
use crate::hybrid::pipeline::{run_pipeline, PipelineConfig};

const JOB: &str = "latent codi pipeline";

/// Arguments of `latent codi pipeline` (unset flags keep the documented run's values).
#[derive(clap::Args, Debug)]
pub struct PipelineArgs {
    /// The common flags (`--output-dir`, `--quiet`, `--dry-run` apply).
    #[command(flatten)]
    pub common: CommonArgs,
    /// Training problems.
    #[arg(long)]
    pub train_examples: Option<usize>,
    /// Test problems.
    #[arg(long)]
    pub test_examples: Option<usize>,
    /// CoT-SFT epochs.
    #[arg(long)]
    pub cot_epochs: Option<usize>,
    /// CODI epochs.
    #[arg(long)]
    pub codi_epochs: Option<usize>,
    /// Seeds, comma-separated: one full run each; the table has mean ± sd over them.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,
    /// Reuse each seed's CoT-SFT and CODI models when its directory has them.
    #[arg(long)]
    pub reuse_models: bool,
    /// Seeds run at the same time (default: the CPU cores).
    #[arg(long)]
    pub parallel_seeds: Option<usize>,
    /// Phase 1: thoughts that replace one CoT step.
    #[arg(long)]
    pub latents_per_step: Option<usize>,
    /// Phase 2 epochs.
    #[arg(long)]
    pub phase2_epochs: Option<usize>,
    /// Phase 2 peak learning rate.
    #[arg(long)]
    pub phase2_learning_rate: Option<f64>,
    /// Adaptive mode (step rule): `<bot>` thresholds evaluated, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub bot_thresholds: Option<Vec<f32>>,
    /// Phase 2: also distil each `<eot>` towards the teacher's state at the end of the replaced
    /// steps.
    #[arg(long)]
    pub eot_distill: bool,
    /// The code-path control: Phase 2 on all-latent samples without cot-only rows (plain CODI
    /// continued for Phase 2's updates).
    #[arg(long)]
    pub control_all_latent: bool,
    /// Phase 2: switch predictions trained on entropy-rule samples (all, boundaries, off).
    #[arg(long)]
    pub switch_labels: Option<SwitchLabels>,
    /// Share of Phase 2 samples trained as pure CoT.
    #[arg(long)]
    pub hybrid_cot_only_ratio: Option<f64>,
    /// Entropy-rule controller: steps to stay explicit before switching into latent mode.
    #[arg(long)]
    pub window_e_to_l: Option<usize>,
    /// Entropy-rule controller: steps to stay latent before switching back.
    #[arg(long)]
    pub window_l_to_e: Option<usize>,
}

impl PipelineArgs {
    /// The pipeline's settings: the documented run's, changed by the flags given.
    pub fn config(&self) -> PipelineConfig {
        let a = self;
        let mut cfg = PipelineConfig::default();
        cfg.experiment.output_dir = a
            .common
            .output_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("runs/codi-hybrid"));
        let e = &mut cfg.experiment;
        e.train_examples = a.train_examples.unwrap_or(e.train_examples);
        e.test_examples = a.test_examples.unwrap_or(e.test_examples);
        e.cot_epochs = a.cot_epochs.unwrap_or(e.cot_epochs);
        e.codi_epochs = a.codi_epochs.unwrap_or(e.codi_epochs);
        cfg.phase1.latents_per_step = a.latents_per_step.unwrap_or(cfg.phase1.latents_per_step);
        cfg.phase2_epochs = a.phase2_epochs.unwrap_or(cfg.phase2_epochs);
        cfg.phase2_learning_rate = a.phase2_learning_rate.unwrap_or(cfg.phase2_learning_rate);
        cfg.seeds = a.seeds.clone().unwrap_or(cfg.seeds);
        cfg.reuse_models = a.reuse_models;
        cfg.parallel_seeds = a.parallel_seeds.unwrap_or(cfg.parallel_seeds);
        cfg.bot_thresholds = a.bot_thresholds.clone().unwrap_or(cfg.bot_thresholds);
        cfg.hybrid.cot_only_ratio = a.hybrid_cot_only_ratio.unwrap_or(cfg.hybrid.cot_only_ratio);
        cfg.hybrid.eot_distill = a.eot_distill;
        cfg.control_all_latent = a.control_all_latent;
        cfg.hybrid.switch_labels = a.switch_labels.unwrap_or(cfg.hybrid.switch_labels);
        cfg.controller.window_e_to_l = a.window_e_to_l.unwrap_or(cfg.controller.window_e_to_l);
        cfg.controller.window_l_to_e = a.window_l_to_e.unwrap_or(cfg.controller.window_l_to_e);
        cfg
    }

    /// Runs the pipeline on the CPU (or prints its settings with `--dry-run`).
    pub fn run(self) -> JobResult {
        self.common.run_settings(JOB, &self.config(), pipeline)
    }
}

/// Runs the pipeline with `cfg`, printing each seed's phase times, then the table and wall time.
pub fn pipeline(cfg: &PipelineConfig, progress: bool) -> JobResult {
    let report =
        run_pipeline::<Autodiff<CpuBackend>>(cfg, &Default::default(), progress, |seed| {
            println!(
            "seed {} (phase times (s): CoT-SFT {:.0}, CODI {:.0}, Phase 1 {:.0}, Phase 2 {:.0})",
            seed.seed,
            seed.phase_seconds[0],
            seed.phase_seconds[1],
            seed.phase_seconds[2],
            seed.phase_seconds[3]
        );
        })?;
    println!("{}", report.markdown());
    println!(
        "total wall time {:.0} s; results in {}",
        report.seconds,
        cfg.experiment.output_dir.join("results.md").display()
    );
    Ok(())
}
