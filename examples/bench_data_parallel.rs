//! Data-parallel training throughput: next-token cross-entropy on a randomly initialised causal LM
//! through the shared loop on one replica per `--devices` entry; prints one JSON line.
//!
//! ```text
//! cargo run --release --example bench_data_parallel -- --config configs/bench/tiny.json \
//!     --devices cpu --batch 8 --seq 64 --updates 6
//! cargo run --release --example bench_data_parallel -- --config configs/bench/tiny.json \
//!     --devices cpu,cpu --batch 8 --seq 64 --updates 6
//! cargo run --release --features cuda --example bench_data_parallel -- \
//!     --config configs/bench/tiny.json --devices cuda:0,cuda:1 --batch 32 --seq 128
//! ```
//! `--batch` is the global micro-batch (split across the replicas). The JSON line holds the wall
//! time of the timed updates (after `--warmup` untimed ones), tokens/s, and the final loss and
//! a checksum of the first replica's parameters, to compare runs with different device lists.
//!
//! A thin wrapper: the same job, flags and output as `latent bench data-parallel` (`latent bench data-parallel --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["bench", "data-parallel"]);
}
