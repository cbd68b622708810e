//! The CPU-sized GRPO / HRPO demo: a tiny model warm-started with CoT-SFT on synthetic
//! GSM8k-Aug-format arithmetic, then GRPO, HRPO and HRPO with the learned projection from the same
//! checkpoint; prints the table of held-out greedy accuracy before and after (see
//! `docs/results.md` and `docs/grpo.md`).
//!
//! `cargo run --release --example grpo_demo` (embedded defaults; flags change them).

use burn::backend::Autodiff;
use clap::Parser;
use grpo_rl::demo::{run_demo, DemoConfig, Variant};
use latent_core::CpuBackend;

#[derive(Parser, Debug)]
#[command(about = "CPU-sized GRPO vs HRPO vs HRPO + projection after a CoT-SFT warm start")]
struct Args {
    /// Output directory.
    #[arg(long, default_value = "runs/grpo-demo")]
    output_dir: std::path::PathBuf,
    /// Seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Problems of the supervised warm start.
    #[arg(long)]
    sft_examples: Option<usize>,
    /// Epochs of the warm start.
    #[arg(long)]
    sft_epochs: Option<usize>,
    /// Drop the last reasoning step from the chain of thought (CODI's preprocessing; the default
    /// keeps it).
    #[arg(long)]
    drop_last_step: bool,
    /// Updates of each RL run.
    #[arg(long)]
    rl_updates: Option<usize>,
    /// Completions per prompt.
    #[arg(long)]
    group_size: Option<usize>,
    /// Learning rate of the model's weights.
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Rollout temperature.
    #[arg(long)]
    temperature: Option<f32>,
    /// KL weight β.
    #[arg(long)]
    beta: Option<f64>,
    /// Prompts per micro-batch.
    #[arg(long)]
    prompts_per_micro_batch: Option<usize>,
    /// RL variants to run, comma-separated: grpo, hrpo, projection (default: all three).
    #[arg(long, value_delimiter = ',')]
    variants: Option<Vec<Variant>>,
    /// Held-out problems.
    #[arg(long)]
    test_examples: Option<usize>,
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
    let cfg = DemoConfig {
        output_dir: a.output_dir,
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
        variants: a.variants.unwrap_or_else(|| d.variants.clone()),
        ..d
    };
    let report = run_demo::<Autodiff<CpuBackend>>(&cfg, &Default::default(), !a.quiet)?;
    println!("{}", report.markdown());
    println!(
        "total wall time: {:.0} s; results in {}",
        report.seconds,
        cfg.output_dir.join("results.md").display()
    );
    Ok(())
}
