//! Runs one forward pass of a Hugging Face causal LM and writes its logits and hidden states.
//!
//! ```text
//! cargo run --release --example lm_forward -- --model <DIR|HUB_ID> --input-ids 1,2,3 \
//!     --out out.safetensors [--dtype f32|bf16|f16] [--device cpu|cuda[:N]] [--incremental]
//! ```
//! Output (f32): `logits` `[1, seq, vocab]`, `hidden_states.<i>` `[1, seq, hidden]` for
//! i = 0..=num_layers (transformers' `output_hidden_states` convention). With `--incremental` the
//! same outputs are computed position by position through the KV cache.
//!
//! A thin wrapper: the same job, flags and output as `latent lm forward` (`latent lm forward --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["lm", "forward"]);
}
