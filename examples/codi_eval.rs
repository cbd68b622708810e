//! Evaluates a saved CODI / CoT-SFT / No-CoT-SFT model (a `final_model` directory) on GSM8K-style
//! data: accuracy (last number, float equality), mean decoded tokens, latent steps, latency per
//! question; with `--probe N`, the top tokens of each continuous thought of the first N questions.
//!
//! ```text
//! cargo run --release --example codi_eval -- --config configs/codi/tiny-cpu.yaml
//! cargo run --release --example codi_eval -- --config configs/codi/gpt2-gsm8k-aug.yaml --model runs/x/final_model --set data.max_eval_samples=100
//! ```
//! By default the model is `training.output_dir/final_model` and the data `data.eval` of the config.
//!
//! `--model` may also be a checkpoint directory of the reference PyTorch implementation
//! (`pytorch_model.bin` or `model.safetensors` with the whole CODI state dict, LoRA unmerged, no
//! `codi.json`): the config then supplies what it does not record (`model.config` or
//! `model.name_or_path` for the base architecture, `model.tokenizer` or the base model's tokenizer,
//! `lora.alpha`, `method.num_latent`, `model.add_bos`, `model.eos_token_id`; see docs/codi.md).
//!
//! ```text
//! cargo run --release --features cuda --example codi_eval -- --config configs/codi/gpt2-gsm8k-aug.yaml --model path/to/CODI-gpt2
//! ```
//!
//! Hybrid decoding (`docs/codi-hybrid.md`): `--baseline_mode adaptive,explicit,latent,random`
//! decodes with the entropy controller or a baseline (one comma-separated list, one table row each);
//! `--window_e_to_l`, `--window_l_to_e`, `--max_switch_count`, `--max_latent_steps`,
//! `--explicit_probability` (random mode) set the controller; `--verbose` prints mode traces.
//!
//! ```text
//! cargo run --release --example codi_eval -- --config configs/codi/tiny-cpu.yaml --baseline_mode adaptive,random --verbose
//! ```
//!
//! A thin wrapper: the same job, flags and output as `latent codi eval` (`latent codi eval --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["codi", "eval"]);
}
