//! The hybrid CODI pipeline at CPU size (README main job): synthetic GSM8k-Aug-format arithmetic,
//! a tiny model trained with CoT-SFT, then CODI from it, Phase 1 hybrid data from the CoT-SFT
//! model, Phase 2 from the CODI model, and every decoding mode of the Phase 2 model (explicit,
//! latent, adaptive, random at several probabilities). Prints the table and writes it with a plot
//! of accuracy against written tokens (see `docs/codi-hybrid.md`, `docs/results.md`).
//!
//! `cargo run --release --example codi_pipeline` (embedded defaults; flags change them).
//!
//! A thin wrapper: the same job, flags and output as `latent codi pipeline` (`latent codi pipeline --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["codi", "pipeline"]);
}
