//! Collects latent reasoning paths of a CODI reasoner for the latent reward model: per question,
//! one noise-free decoding and N decodings with Gaussian noise on the continuous thoughts, stored
//! as safetensors shards with a JSON metadata file (`docs/prm.md`). Re-running the same command
//! resumes after the last complete shard.
//!
//! ```text
//! cargo run --release --example prm_collect -- --reasoner runs/codi-experiment/codi/final_model \
//!     --questions runs/codi-experiment/data/train.txt --out runs/prm/paths-train --paths 8 --sigma 0.5 --relative-sigma
//! ```
//!
//! A thin wrapper: the same job, flags and output as `latent prm collect` (`latent prm collect --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["prm", "collect"]);
}
