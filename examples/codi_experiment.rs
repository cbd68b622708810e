//! The CPU-sized CODI experiment (README main job): synthetic GSM8k-Aug-format arithmetic, a tiny
//! model trained with CoT-SFT, then CODI from it, and No-CoT-SFT with the same number of updates;
//! prints the table of accuracy, decoded tokens and wall time (see `docs/results.md`).
//!
//! `cargo run --release --example codi_experiment` (embedded defaults; flags change them).
//!
//! A thin wrapper: the same job, flags and output as `latent codi experiment` (`latent codi experiment --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["codi", "experiment"]);
}
