//! Encodes texts with the model's frozen encoder and decodes them with MaskGIT + CFG; prints each
//! output and the decoding time (batch of all `--text`s, or `--repeat` copies for latency runs).
//! The time covers MaskGIT decoding (and correction rounds when asked), not the initial encoding.
//!
//! ```text
//! cargo run --release --example sgdd_generate -- --model runs/sgdd/phase1/export \
//!     --text "How can I be a good geologist?" [--text ...] [--steps 16] [--cfg-scale 2] \
//!     [--gumbel-tau 4.5] [--temperature 1] [--correct-rounds 2] [--repeat 32] [--runs 3]
//! ```
//!
//! A thin wrapper: the same job, flags and output as `latent sgdd generate` (`latent sgdd generate --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["sgdd", "generate"]);
}
