//! Trains the latent reward model on collected paths from a YAML config (`configs/prm/*.yaml`).
//!
//! ```text
//! cargo run --release --example prm_train -- --config configs/prm/qwen3-0.6b.yaml --dry-run
//! cargo run --release --example prm_train -- --config configs/prm/cpu-demo.yaml --set loss=listwise
//! cargo run --release --example prm_train -- --config X.yaml --resume runs/prm/train/checkpoint-100
//! cargo run --release --example prm_train -- --config configs/prm/cpu-demo.yaml --devices cpu,cpu
//! cargo run --release --features cuda --example prm_train -- --config X.yaml --devices cuda:0,cuda:1
//! ```
//! `--devices` runs one replica per device (data parallel: each micro-batch is split across them,
//! gradients are averaged before the clip and update; the first replica logs and saves); without
//! it the run uses `training.device`.
//! `--dry-run` prints the parameter counts from `config.json` alone, allocating nothing; Ctrl-C
//! writes a checkpoint and stops. `training.checkpointing: true` trains with activation
//! checkpointing (docs/training.md).

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use clap::Parser;
use latent_core::train::{AutodiffDevicesJob, StopFlag, TrainingJob};
use latent_core::DeviceList;
use latent_prm::config::PrmRunConfig;
use latent_prm::paths::CollectionMeta;
use latent_prm::train::{parameter_counts, train_on, TrainOptions};

#[derive(Parser, Debug)]
#[command(about = "Train the latent reward model on collected latent paths")]
struct Args {
    /// The run config.
    #[arg(long)]
    config: PathBuf,
    /// Overrides `dotted.key=value` (repeatable).
    #[arg(long = "set")]
    overrides: Vec<String>,
    /// Print the parameter counts, then stop.
    #[arg(long)]
    dry_run: bool,
    /// Resume from this checkpoint directory.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    /// Data-parallel replicas, one per device (`cpu,cpu`, `cuda:0,cuda:1`); default:
    /// `training.device`.
    #[arg(long)]
    devices: Option<String>,
}

type Out = Result<(), Box<dyn std::error::Error>>;

fn dry_run(config: &PrmRunConfig) -> Out {
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

struct Job(Args, PrmRunConfig);

impl AutodiffDevicesJob for Job {
    type Output = Out;

    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> Out {
        let Job(args, config) = self;
        let options = TrainOptions {
            resume: args.resume,
            progress: !args.quiet,
            stop: Some(StopFlag::ctrl_c()?),
        };
        let (_, report) = train_on::<B>(&config, &options, &devices)?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        Ok(())
    }
}

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Out {
    let args = Args::parse();
    let config = PrmRunConfig::load(&args.config, &args.overrides)?;
    if args.dry_run {
        return dry_run(&config);
    }
    let devices: DeviceList = args
        .devices
        .as_deref()
        .unwrap_or(&config.training.device)
        .parse()?;
    let checkpointing = config.training.checkpointing;
    let job = Job(args, config);
    devices.run(TrainingJob { checkpointing, job })?
}
