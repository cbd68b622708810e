//! Evaluates a trained latent reward model on a held-out collection: score quality (MSE, MAE,
//! AUROC) and best-of-N accuracy against greedy, random, majority vote, score-weighted vote and
//! pass@N, with bootstrap error bars; writes `results.json`, `results.md` and `best_of_n.png`.
//!
//! ```text
//! cargo run --release --example prm_eval -- --model runs/prm/train/final --paths runs/prm/paths-test --out runs/prm/eval
//! ```
//!
//! A thin wrapper: the same job, flags and output as `latent prm eval` (`latent prm eval --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["prm", "eval"]);
}
