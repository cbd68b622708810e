//! Latent inputs: the one place for "what vector goes in instead of a token".
//!
//! - [`ThinkingResidual`]: HRPO's gated fusion of a token embedding and a thinking state
//!   (`x = a ⊙ e + sqrt(1 − a²) ⊙ (i ⊙ h)`), Λ kept in f32;
//! - thinking states ([`ThinkingSource`]): HRPO's probability-weighted embedding
//!   ([`probability_weighted`], about one embedding's norm) or the learned
//!   [`ThinkingProjection`] of the last hidden state (norm 1);
//! - [`ThinkingLm`]: a causal LM with the residual (and projection), its mixed forward and its
//!   adapter in PEFT's layout with HRPO's key names;
//! - [`rollout()`]: HRPO rollouts — G completions per prompt, mixed while the row thinks — as a
//!   policy of the decoding loop ([`crate::infer::decode()`]).
//!
//! CODI's continuous thoughts (a projected last hidden state fed in place of a token) and Coconut's
//! (the hidden state itself) are [`crate::infer::Next::Thought`] steps of the same loop; CODI's
//! projection is a module of `latent-codi` because its saved layout is CODI's.

mod residual;
mod rollout;
mod rollout_exchange;
mod thinking_lm;
mod thinking_state;

pub use residual::{
    lambda_from_u, Fused, ThinkingResidual, ThinkingResidualConfig, LAMBDA_SCALE, RESIDUAL_MODULES,
};
pub use rollout::{rollout, RolloutConfig, RolloutTensors, Rollouts};
pub use thinking_lm::{module_prefix, MixedInput, ThinkingLm, PROJECTION_INIT_STD};
pub use thinking_state::{
    probability_weighted, ThinkingProjection, ThinkingSource, PROJECTION_MODULE,
};
