//! Generates text from a causal LM through the KV cache; prints the text and tokens/s.
//!
//! ```text
//! cargo run --release --example generate -- --model <DIR|HUB_ID> --prompt "TEXT" [--chat] \
//!     [--system TEXT] [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] \
//!     [--stop TEXT]... [--device cpu|cuda[:N]] [--dtype f32|bf16]
//! cargo run --release --example generate -- --model crates/latent-core/tests/fixtures/tiny-chat \
//!     --prompt "What is 3 times 4?" --chat
//! ```
//! With `--chat` the prompt is rendered with the model's chat template (`tokenizer_config.json`),
//! and the template's end-of-turn token also stops generation.
//!
//! A thin wrapper: the same job, flags and output as `latent lm generate` (`latent lm generate --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["lm", "generate"]);
}
