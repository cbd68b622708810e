//! Trains a policy with GRPO or HRPO from a YAML config, then evaluates it (greedy pass@1) when the
//! config names an evaluation set.
//!
//! ```text
//! cargo run --release --features cuda --example hrpo_train -- --config configs/grpo/hrpo-qwen2.5-1.5b-gsm8k.yaml
//! cargo run --release --example hrpo_train -- --config configs/grpo/hrpo-qwen2.5-1.5b-gsm8k.yaml --dry-run
//! cargo run --release --example hrpo_train -- --config X.yaml --set grpo.loss.loss_type=dapo --set training.device=cuda
//! ```
//! `--dry-run` prints the trainable parameters per group and the optimizer updates per epoch from
//! `model.config` (or the model's `config.json`) alone, allocating nothing. `--resume` continues
//! from the newest checkpoint in `training.output_dir`; Ctrl-C saves one and stops.
//! `training.checkpointing: true` trains with activation checkpointing (docs/training.md).
//! `--devices cpu,cpu` (or `cuda:0,cuda:1`, built with `--features cuda`) trains one data-parallel
//! replica per device: each rolls out its share of every window's groups, and each micro-batch's
//! completions are split across them (docs/training.md, "Data parallel").
//!
//! A thin wrapper: the same job, flags and output as `latent hrpo train` (`latent hrpo train --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["hrpo", "train"]);
}
