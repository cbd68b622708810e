//! Throughput and memory of a randomly initialised causal LM; prints one JSON line.
//!
//! ```text
//! cargo run --release --example bench_lm -- --config configs/bench/tiny.json \
//!     --batch 8 --seq 128 --steps 10 --mode forward|train [--device cpu|cuda[:N]] [--dtype f32|bf16]
//! cargo run --release --example bench_lm -- --config configs/bench/tiny.json \
//!     --mode generate --batch 1 --prompt-len 16 --new-tokens 64
//! ```
//! `train` = forward + next-token cross-entropy + backward + AdamW step. `generate` = greedy
//! decoding of exactly `--new-tokens` steps through the workspace's decoding loop (tokens/s),
//! then the same number of steps fed with vectors (the last hidden state, as a continuous thought)
//! from the same prompt, reporting the cost of a vector step against a token step. Timing excludes
//! `--warmup` runs. See docs/performance.md for recorded numbers and the PyTorch baseline
//! (`scripts/bench_torch.py`, same JSON fields).
//!
//! A thin wrapper: the same job, flags and output as `latent bench lm` (`latent bench lm --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["bench", "lm"]);
}
