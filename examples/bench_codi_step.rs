//! Time and peak memory of CODI training steps on a randomly initialised model, with or without
//! activation checkpointing; prints one JSON line.
//!
//! ```text
//! cargo build --release --example bench_codi_step
//! target/release/examples/bench_codi_step --steps 3                    # Autodiff<Flex>
//! target/release/examples/bench_codi_step --steps 3 --checkpointing    # Autodiff<Flex, BalancedCheckpointing>
//! target/release/examples/bench_codi_step --set lora=null              # full fine-tuning instead of LoRA
//! ```
//! The run config (default: the published GPT-2 small run, `configs/codi/gpt2-gsm8k-aug.yaml`:
//! LoRA r = 128 on `c_attn`, `c_proj`, `c_fc`, frozen embeddings, the projection, 6 thoughts) is
//! read with `--set` overrides; the model is built from its `model.config` with random weights (no
//! download, as `codi_train --dry-run`). Every step trains on the same synthetic micro-batch of
//! `--batch` examples with `--question`, `--cot` and `--answer` random token ids each (defaults
//! 4 × 64 / 96 / 8: round lengths at the upper end of GSM8k-Aug's, whose validation questions have
//! a median of 215 characters, about 50 GPT-2 tokens, and whose equation CoTs are shorter; 4
//! examples per micro-batch where the published run has 32 on an A100), through
//! `latent_core::train::train` as `codi_train` does: the CODI loss (teacher pass, question pass,
//! 6 latent steps, decoder pass), backward, global-norm clipping and the AdamW update. `--no-update` times forward + backward
//! only. Peak RSS is the process's, so run one process per mode; `peak_rss_before_steps_mb` is
//! the peak after building the model, before the first step. Timing excludes `--warmup` steps;
//! each step reports its wall time and the CPU time of the whole process (all threads, from
//! `/proc/self/stat`), which on a shared machine moves less than the wall time.
//!
//! A thin wrapper: the same job, flags and output as `latent bench codi-step` (`latent bench codi-step --help`).

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    latent_reasoning::cli::main_as(&["bench", "codi-step"]);
}
