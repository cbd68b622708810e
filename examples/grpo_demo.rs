//! The CPU-sized GRPO / HRPO demo: a tiny model warm-started with CoT-SFT on synthetic
//! GSM8k-Aug-format arithmetic, then GRPO, HRPO and HRPO with the learned projection from the same
//! checkpoint; prints the table of held-out greedy accuracy before and after (see
//! `docs/results.md` and `docs/grpo.md`).
//!
//! `cargo run --release --example grpo_demo` (embedded defaults; flags change them).
//!
//! A thin wrapper: the same job, flags and output as `latent hrpo demo` (`latent hrpo demo --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["hrpo", "demo"]);
}
