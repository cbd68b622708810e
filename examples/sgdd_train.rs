//! Trains SGDD on the shared training loop.
//!
//! ```text
//! cargo run --release --example sgdd_train -- --config configs/sgdd/phase1_wiki.yaml [--set train.lr=1e-4]...
//! cargo run --release --example sgdd_train -- --config configs/sgdd/phase2_qqp.yaml --resume runs/sgdd/phase1/best
//! ```
//! `--resume` with a checkpoint of the same task continues that run exactly; with a checkpoint of
//! the other task (phase 1 → phase 2) it takes its weights and starts a fresh optimizer.
//! Writes checkpoints (`checkpoint-N`, `best`, `final`), `export/`, `metrics.jsonl`,
//! `training.log`, `training_stats.json` and `loss.png` under `train.out_dir`.
//! `train.checkpointing: true` trains with activation checkpointing (docs/training.md).
//! `--devices cpu,cpu` (or `cuda:0,cuda:1`, built with `--features cuda`) trains one data-parallel
//! replica per device, each on its shard of every `train.batch_size` micro-batch (the same updates
//! as one device, up to rounding).

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use clap::Parser;
use latent_core::train::{AutodiffDevicesJob, StopFlag, TrainingJob};
use latent_core::DeviceList;
use sgdd_diffusion::config::RunConfig;
use sgdd_diffusion::train::run_training_on;

#[derive(Parser, Debug)]
#[command(about = "Train SGDD (phase 1: Wikipedia reconstruction, phase 2: QQP paraphrase)")]
struct Args {
    /// YAML or JSON run config.
    #[arg(long)]
    config: PathBuf,
    /// Overrides `key.path=value` (repeatable), e.g. `--set train.epochs=2`.
    #[arg(long = "set")]
    overrides: Vec<String>,
    /// Checkpoint directory to resume from (same task) or to start from (other task).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Device (`cpu`, `cuda`, `cuda:1`).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Data-parallel replicas, one per device (`cpu,cpu`, `cuda:0,cuda:1`); default: `--device`.
    #[arg(long)]
    devices: Option<String>,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

struct Train(Args, RunConfig);

impl AutodiffDevicesJob for Train {
    type Output = sgdd_diffusion::Result<()>;

    fn run<A: AutodiffBackend>(self, devices: Vec<A::Device>) -> Self::Output {
        let (args, config) = (self.0, self.1);
        let stop = StopFlag::ctrl_c()?;
        let outcome = run_training_on::<A>(
            &config,
            args.resume.as_deref(),
            &devices,
            !args.quiet,
            Some(&stop),
        )?;
        println!(
            "{}",
            serde_json::json!({
                "encoder_parameters": outcome.params.encoder,
                "trainable_parameters": outcome.params.trainable,
                "updates": outcome.updates,
                "best": {"key": outcome.best.key, "value": outcome.best.value},
                "last_valid": outcome.last_valid.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect::<serde_json::Map<String, serde_json::Value>>(),
                "export": outcome.export,
            })
        );
        Ok(())
    }
}

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = Args::parse();
    let result = RunConfig::load(&args.config, &args.overrides).and_then(|config| {
        let devices: DeviceList = args.devices.as_deref().unwrap_or(&args.device).parse()?;
        let checkpointing = config.train.checkpointing;
        let job = Train(args, config);
        devices
            .run(TrainingJob { checkpointing, job })
            .map_err(Into::into)
            .and_then(|r| r)
    });
    if let Err(err) = result {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}
