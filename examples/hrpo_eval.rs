//! Greedy pass@1 of a trained policy with HRPO's protocol (the training prompts' chat template and
//! system prompt, arg-max decoding with mixing on for hybrid policies, at most
//! `eval.max_new_tokens`), on the config's evaluation set (GSM8K test by default).
//!
//! ```text
//! cargo run --release --example hrpo_eval -- --config configs/grpo/hrpo-qwen2.5-1.5b-gsm8k.yaml \
//!     --policy runs/hrpo-qwen2.5-1.5b-gsm8k/final [--set eval.max_new_tokens=512] [--out eval.json]
//! ```
//! Without `--policy` the base model is evaluated (no mixing).
//!
//! A thin wrapper: the same job, flags and output as `latent hrpo eval` (`latent hrpo eval --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["hrpo", "eval"]);
}
