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
//!
//! A thin wrapper: the same job, flags and output as `latent prm train` (`latent prm train --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["prm", "train"]);
}
