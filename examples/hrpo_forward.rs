//! One forward pass of a base model plus an HRPO adapter, with thinking states mixed in.
//!
//! ```text
//! cargo run --release --example hrpo_forward -- --model BASE_DIR --adapter ADAPTER_DIR \
//!     --input-ids 1,2,3 --thinking-mask 0,1,1 --thinking-states H.safetensors --out OUT.safetensors \
//!     [--dtype f32|bf16|f16] [--device cpu|cuda[:N]] [--save-adapter DIR]
//! ```
//! `ADAPTER_DIR` is a PEFT adapter directory (`adapter_config.json`, `adapter_model.safetensors`)
//! with LoRA on the base model's projections and HRPO's residual (`thinking_residual_gate_r`,
//! `thinking_residual_gate_i`, `thinking_residual_Lambda`) in `modules_to_save`. `H.safetensors`
//! holds `thinking_states` `[seq, hidden]` (f32; rows where the mask is 0 are ignored). Where the mask
//! is 1 the input is `ThinkingResidual(E[id], h)`, elsewhere the token embedding. Output (f32):
//! `logits` `[1, seq, vocab]`.
//!
//! A thin wrapper: the same job, flags and output as `latent hrpo forward` (`latent hrpo forward --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["hrpo", "forward"]);
}
