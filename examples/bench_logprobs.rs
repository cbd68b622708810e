//! Peak memory and time of per-token log-probabilities under autodiff: the full-logits path
//! (`[batch, seq, vocab]` logits, log-softmax, gather, backward) against the chunked helper
//! (`CausalLm::logprob_loss`). Prints one JSON line; run each mode in its own process, since the
//! peak resident set is per process.
//!
//! ```text
//! cargo run --release --example bench_logprobs -- --config configs/bench/qwen2.5-0.5b-2layers.json \
//!     --batch 4 --seq 1024 --mode full|chunked|body [--chunk 64] [--frozen-head] [--device cpu|cuda[:N]]
//! ```
//! The loss is GRPO's shape (ratio · advantage, mean over tokens); the body is random weights from
//! the config. See docs/performance.md for recorded numbers.
//!
//! A thin wrapper: the same job, flags and output as `latent bench logprobs` (`latent bench logprobs --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["bench", "logprobs"]);
}
