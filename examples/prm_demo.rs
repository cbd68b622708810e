//! The CPU-sized latent reward model demo: the CODI experiment's model (trained first when
//! `--codi-experiment` does not hold it), noisy latent paths on training and held-out questions,
//! a scorer trained on them, and the best-of-N table (see `docs/results.md` and `docs/prm.md`).
//!
//! `cargo run --release --example prm_demo` (embedded defaults; flags change them).

use burn::backend::Autodiff;
use clap::Parser;
use latent_core::CpuBackend;
use latent_prm::demo::{run_demo, DemoConfig};
use latent_prm::loss::LossKind;

#[derive(Parser, Debug)]
#[command(about = "CPU-sized latent reward model: collect, train, best-of-N")]
struct Args {
    /// Output directory.
    #[arg(long, default_value = "runs/prm-demo")]
    output_dir: std::path::PathBuf,
    /// The CODI experiment's output directory (reused, or trained there).
    #[arg(long, default_value = "runs/codi-experiment")]
    codi_experiment: std::path::PathBuf,
    /// Training questions.
    #[arg(long)]
    train_questions: Option<usize>,
    /// Held-out questions.
    #[arg(long)]
    test_questions: Option<usize>,
    /// Paths per held-out question (the largest N).
    #[arg(long)]
    test_paths: Option<usize>,
    /// Noise σ (relative to each thought's RMS unless --absolute-sigma).
    #[arg(long)]
    sigma: Option<f32>,
    /// Use σ as is.
    #[arg(long)]
    absolute_sigma: bool,
    /// `mse`, `bce` or `listwise`.
    #[arg(long)]
    loss: Option<String>,
    /// Epochs of the scorer.
    #[arg(long)]
    epochs: Option<usize>,
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
    let d = DemoConfig::default();
    let loss: LossKind = match &a.loss {
        Some(s) => serde_json::from_value(serde_json::Value::String(s.clone()))?,
        None => d.loss,
    };
    let cfg = DemoConfig {
        output_dir: a.output_dir,
        codi_experiment: a.codi_experiment,
        train_questions: a.train_questions.unwrap_or(d.train_questions),
        test_questions: a.test_questions.unwrap_or(d.test_questions),
        test_paths: a.test_paths.unwrap_or(d.test_paths),
        sigma: a.sigma.unwrap_or(d.sigma),
        relative_sigma: !a.absolute_sigma,
        loss,
        epochs: a.epochs.unwrap_or(d.epochs),
        ..d
    };
    let report = run_demo::<Autodiff<CpuBackend>>(&cfg, &Default::default(), !a.quiet)?;
    println!("{}", report.eval.markdown());
    println!(
        "total {:.0} s (reasoner, collection, scorer, evaluation: {:.0?} s)",
        report.seconds, report.stage_seconds
    );
    Ok(())
}
