//! The CPU-sized CODI experiment (README main job): synthetic GSM8k-Aug-format arithmetic, a tiny
//! model trained with CoT-SFT, then CODI from it, and No-CoT-SFT with the same number of updates;
//! prints the table of accuracy, decoded tokens and wall time (see `docs/results.md`).
//!
//! `cargo run --release --example codi_experiment` (embedded defaults; flags change them).

use burn::backend::Autodiff;
use clap::Parser;
use latent_codi::experiment::{run_experiment, ExperimentConfig};
use latent_core::CpuBackend;

#[derive(Parser, Debug)]
#[command(about = "CPU-sized CODI vs CoT-SFT vs No-CoT-SFT on synthetic arithmetic")]
struct Args {
    /// Output directory.
    #[arg(long, default_value = "runs/codi-experiment")]
    output_dir: std::path::PathBuf,
    /// Seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Equations per problem.
    #[arg(long)]
    steps: Option<usize>,
    /// Largest operand.
    #[arg(long)]
    operand_max: Option<u64>,
    /// Largest intermediate value.
    #[arg(long)]
    max_value: Option<u64>,
    /// Training problems.
    #[arg(long)]
    train_examples: Option<usize>,
    /// Test problems.
    #[arg(long)]
    test_examples: Option<usize>,
    /// Model width.
    #[arg(long)]
    hidden: Option<usize>,
    /// Blocks.
    #[arg(long)]
    layers: Option<usize>,
    /// CoT-SFT epochs.
    #[arg(long)]
    cot_epochs: Option<usize>,
    /// CODI epochs.
    #[arg(long)]
    codi_epochs: Option<usize>,
    /// Batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// CoT/No-CoT learning rate.
    #[arg(long)]
    learning_rate: Option<f64>,
    /// CODI learning rate.
    #[arg(long)]
    codi_learning_rate: Option<f64>,
    /// β.
    #[arg(long)]
    distill_loss_factor: Option<f64>,
    /// Training numerics: f32, bf16 or f16 (f32 master weights for bf16/f16).
    #[arg(long)]
    precision: Option<latent_core::train::Precision>,
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
    let d = ExperimentConfig::default();
    let cfg = ExperimentConfig {
        output_dir: a.output_dir,
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
    };
    let report = run_experiment::<Autodiff<CpuBackend>>(&cfg, &Default::default(), !a.quiet)?;
    println!("{}", report.markdown());
    println!(
        "total wall time: {:.0} s; results in {}",
        report.seconds,
        cfg.output_dir.join("results.md").display()
    );
    Ok(())
}
