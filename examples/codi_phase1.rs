//! Phase 1 of hybrid CODI (`docs/codi-hybrid.md`): a CoT-capable saved model (a `final_model`
//! directory of `codi_train`, e.g. CoT-SFT or CODI) measures the entropy of every CoT step of
//! GSM8k-Aug-format data and writes hybrid samples (entropy-guided / random / explicit) to one
//! JSON file; prints summary statistics.
//!
//! ```text
//! cargo run --release --example codi_phase1 -- --model_path runs/x/cot_sft/final_model \
//!     --data_path runs/x/data/train.txt --output_path runs/x/hybrid/hybrid_training_data.json
//! ```
//!
//! A thin wrapper: the same job, flags and output as `latent codi phase1` (`latent codi phase1 --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["codi", "phase1"]);
}
