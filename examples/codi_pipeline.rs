//! The hybrid CODI pipeline at CPU size (README main job): synthetic GSM8k-Aug-format arithmetic,
//! a tiny model trained with CoT-SFT, then CODI from it, Phase 1 hybrid data from the CoT-SFT
//! model, Phase 2 from the CODI model, and every decoding mode of the Phase 2 model (explicit,
//! latent, adaptive, random at several probabilities). Prints the table and writes it with a plot
//! of accuracy against written tokens (see `docs/codi-hybrid.md`, `docs/results.md`).
//!
//! `cargo run --release --example codi_pipeline` (embedded defaults; flags change them).

use burn::backend::Autodiff;
use clap::Parser;
use latent_codi::hybrid::pipeline::{run_pipeline, PipelineConfig};
use latent_core::CpuBackend;

#[derive(Parser, Debug)]
#[command(about = "CPU-sized hybrid CODI: CoT-SFT → CODI → Phase 1 → Phase 2 → every mode")]
struct Args {
    /// Output directory.
    #[arg(long, default_value = "runs/codi-hybrid")]
    output_dir: std::path::PathBuf,
    /// Training problems.
    #[arg(long)]
    train_examples: Option<usize>,
    /// Test problems.
    #[arg(long)]
    test_examples: Option<usize>,
    /// CoT-SFT epochs.
    #[arg(long)]
    cot_epochs: Option<usize>,
    /// CODI epochs.
    #[arg(long)]
    codi_epochs: Option<usize>,
    /// Seeds, comma-separated: one full run each; the table has mean ± sd over them.
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
    /// Reuse each seed's CoT-SFT and CODI models when its directory has them.
    #[arg(long)]
    reuse_models: bool,
    /// Seeds run at the same time (default: the CPU cores).
    #[arg(long)]
    parallel_seeds: Option<usize>,
    /// Phase 1: thoughts that replace one CoT step.
    #[arg(long)]
    latents_per_step: Option<usize>,
    /// Phase 2 epochs.
    #[arg(long)]
    phase2_epochs: Option<usize>,
    /// Phase 2 peak learning rate.
    #[arg(long)]
    phase2_learning_rate: Option<f64>,
    /// Adaptive mode (step rule): `<bot>` thresholds evaluated, comma-separated.
    #[arg(long, value_delimiter = ',')]
    bot_thresholds: Option<Vec<f32>>,
    /// Phase 2: also distil each `<eot>` towards the teacher's state at the end of the replaced
    /// steps.
    #[arg(long)]
    eot_distill: bool,
    /// The code-path control: Phase 2 on all-latent samples without cot-only rows (plain CODI
    /// continued for Phase 2's updates).
    #[arg(long)]
    control_all_latent: bool,
    /// Phase 2: switch predictions trained on entropy-rule samples (all, boundaries, off).
    #[arg(long)]
    switch_labels: Option<latent_codi::hybrid::batch::SwitchLabels>,
    /// Share of Phase 2 samples trained as pure CoT.
    #[arg(long)]
    hybrid_cot_only_ratio: Option<f64>,
    /// Entropy-rule controller: steps to stay explicit before switching into latent mode.
    #[arg(long)]
    window_e_to_l: Option<usize>,
    /// Entropy-rule controller: steps to stay latent before switching back.
    #[arg(long)]
    window_l_to_e: Option<usize>,
    /// Hide progress bars.
    #[arg(long)]
    quiet: bool,
}

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    let mut cfg = PipelineConfig::default();
    cfg.experiment.output_dir = a.output_dir;
    let e = &mut cfg.experiment;
    e.train_examples = a.train_examples.unwrap_or(e.train_examples);
    e.test_examples = a.test_examples.unwrap_or(e.test_examples);
    e.cot_epochs = a.cot_epochs.unwrap_or(e.cot_epochs);
    e.codi_epochs = a.codi_epochs.unwrap_or(e.codi_epochs);
    cfg.phase1.latents_per_step = a.latents_per_step.unwrap_or(cfg.phase1.latents_per_step);
    cfg.phase2_epochs = a.phase2_epochs.unwrap_or(cfg.phase2_epochs);
    cfg.phase2_learning_rate = a.phase2_learning_rate.unwrap_or(cfg.phase2_learning_rate);
    cfg.seeds = a.seeds.unwrap_or(cfg.seeds);
    cfg.reuse_models = a.reuse_models;
    cfg.parallel_seeds = a.parallel_seeds.unwrap_or(cfg.parallel_seeds);
    cfg.bot_thresholds = a.bot_thresholds.unwrap_or(cfg.bot_thresholds);
    cfg.hybrid.cot_only_ratio = a.hybrid_cot_only_ratio.unwrap_or(cfg.hybrid.cot_only_ratio);
    cfg.hybrid.eot_distill = a.eot_distill;
    cfg.control_all_latent = a.control_all_latent;
    cfg.hybrid.switch_labels = a.switch_labels.unwrap_or(cfg.hybrid.switch_labels);
    cfg.controller.window_e_to_l = a.window_e_to_l.unwrap_or(cfg.controller.window_e_to_l);
    cfg.controller.window_l_to_e = a.window_l_to_e.unwrap_or(cfg.controller.window_l_to_e);
    let report =
        run_pipeline::<Autodiff<CpuBackend>>(&cfg, &Default::default(), !a.quiet, |seed| {
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
