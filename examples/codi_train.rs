//! Trains CODI (or the CoT-SFT / No-CoT-SFT baselines) from a YAML config, then evaluates the
//! final model when the config names an evaluation set.
//!
//! ```text
//! cargo run --release --example codi_train -- --config configs/codi/tiny-cpu.yaml
//! cargo run --release --example codi_train -- --config configs/codi/gpt2-gsm8k-aug.yaml --dry-run
//! cargo run --release --example codi_train -- --config X.yaml --set training.epochs=3 --set method.task=cot_sft
//! ```
//! `--resume` continues from the newest checkpoint in `training.output_dir`; Ctrl-C saves one and stops.
//! `training.checkpointing: true` trains with activation checkpointing (docs/training.md).
//! `--devices cpu,cpu` (or `cuda:0,cuda:1`, built with `--features cuda`) trains one data-parallel
//! replica per device: `per_device_batch_size` examples on each, `effective_batch_size` per update.
//!
//! A thin wrapper: the same job, flags and output as `latent codi train` (`latent codi train --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["codi", "train"]);
}
