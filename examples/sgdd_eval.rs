//! Evaluates a trained SGDD model on its test data: masked-CE loss, the weighted-bound perplexity,
//! exact match, token F1, BLEU-4 (DiffuSeq sentence protocol and sacreBLEU corpus BLEU), the cosine
//! between the re-encoded output and the input; for QQP also the copy-source baseline, BLEU against
//! the source and the exact-copy rate; the copy-nothing, unigram and nearest-neighbour retrieval
//! baselines on the same pairs. Writes `metrics.json` and `samples.jsonl` to `--out`.
//!
//! ```text
//! cargo run --release --example sgdd_eval -- --model runs/sgdd/phase1/export [--limit 500] \
//!     [--set decode.cfg_scale=0] [--set data.test_file=...] [--on-train] [--out DIR]
//! ```
//!
//! A thin wrapper: the same job, flags and output as `latent sgdd eval` (`latent sgdd eval --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["sgdd", "eval"]);
}
