//! The CPU-sized latent reward model demo: the CODI experiment's model (trained first when
//! `--codi-experiment` does not hold it), noisy latent paths on training and held-out questions,
//! a scorer trained on them, and the best-of-N table (see `docs/results.md` and `docs/prm.md`).
//!
//! `cargo run --release --example prm_demo` (embedded defaults; flags change them).
//!
//! A thin wrapper: the same job, flags and output as `latent prm demo` (`latent prm demo --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["prm", "demo"]);
}
