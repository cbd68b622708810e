//! Writes a causal LM in Hugging Face layout (`config.json` + `model.safetensors`): either a
//! checkpoint converted to another dtype, or a seeded random initialisation from a `config.json`.
//!
//! ```text
//! cargo run --release --example lm_save -- --model <DIR|HUB_ID> --out <DIR> [--save-dtype f32|bf16|f16]
//! cargo run --release --example lm_save -- --config configs/bench/tiny.json --seed 0 --out <DIR>
//! ```
//!
//! A thin wrapper: the same job, flags and output as `latent lm save` (`latent lm save --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["lm", "save"]);
}
