//! The workspace's main job until the CODI pipeline lands: builds a small Qwen2-style model from an
//! embedded config on the CPU (no downloads), runs the forward contract every method uses (ids,
//! hidden states, a latent vector fed in place of a token), saves it in Hugging Face layout,
//! reloads it and checks the logits are identical.
//!
//! ```text
//! cargo run --release --example quickstart [-- --out runs/quickstart]
//! ```
//!
//! A thin wrapper: the same job, flags and output as `latent lm quickstart` (`latent lm quickstart --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["lm", "quickstart"]);
}
