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
//!
//! A thin wrapper: the same job, flags and output as `latent sgdd train` (`latent sgdd train --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["sgdd", "train"]);
}
