//! # grpo-rl
//!
//! GRPO and HRPO-style hybrid latent RL on Burn (Yue et al. 2025, "Hybrid Latent Reasoning via
//! Reinforcement Learning"), with the learnable `thinking_projection` of design documents 001/002.
//! Built on `latent-core`: the policy is a [`ThinkingLm`](latent_core::latent::ThinkingLm)
//! (LoRA on a Hugging Face checkpoint, HRPO's gated thinking residual, optionally the projection),
//! rollouts are `latent_core::latent::rollout` on the one decoding loop, the loss goes through the
//! chunked log-prob helper, and training is the shared loop with HRPO's parameter groups.
//!
//! - [`config`]: the YAML run config (defaults = HRPO's); [`prompt`]: prompts with the chat
//!   template and HRPO's system prompt;
//! - [`reward`]: the [`Reward`] trait and HRPO's GSM8K reward; [`advantage`]: group-relative
//!   advantages; [`loss`]: the GRPO loss with TRL's reductions (`grpo`, `bnpo`, `dr_grpo`, `dapo`);
//! - [`batch`]: generation batches and their micro-batches; [`step`]: rollouts, scoring, reference
//!   log-probs and the loss of a micro-batch ([`GrpoStep`]); [`forward`]: the training forward with
//!   stored thinking states, or recomputed through the projection in two passes;
//! - [`model`]: building the policy, parameter groups, `--dry-run` counts, saving and loading;
//!   [`train`]: the driver; [`eval`]: greedy pass@1; [`demo`]: the CPU-sized demo;
//! - [`cli`]: the jobs `latent hrpo train|eval|forward|demo` (what the examples run).
//!
//! See `docs/grpo.md` for the recipe and every option.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod advantage;
pub mod batch;
pub mod cli;
pub mod config;
pub mod demo;
mod error;
pub mod eval;
pub mod forward;
pub mod loss;
pub mod model;
pub mod prompt;
pub mod reward;
pub mod step;
pub mod train;

pub use config::GrpoRunConfig;
pub use error::{GrpoError, Result};
pub use reward::{Gsm8kReward, Reward};
pub use step::GrpoStep;
