//! Encodes one text with a BERT-family encoder (BERT, RoBERTa, MiniLM) and writes its last hidden
//! state and sentence embedding (attention-masked mean of the last hidden state, not normalised).
//!
//! ```text
//! cargo run --release --example encode -- --model <DIR|HUB_ID> --text "..." --out <FILE>.safetensors
//! ```
//! Output (f32): `last_hidden_state` `[1, seq, hidden]`, `sentence_embedding` `[1, hidden]`.
//!
//! A thin wrapper: the same job, flags and output as `latent lm encode` (`latent lm encode --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["lm", "encode"]);
}
