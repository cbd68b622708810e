//! Inference: the stepper that drives token-or-vector decoding through the key/value cache, the one
//! decoding loop with per-step policies ([`decode()`]), sampling, and `generate` (a policy of it).

pub mod decode;
pub mod generate;
pub mod sampling;
pub mod stepper;

pub use crate::model::{KvCache, LayerKv};
pub use decode::{
    decode, DecodeConfig, DecodePolicy, Decoded, Draw, Next, NextInputs, StepView, StopReason,
};
pub use generate::{generate, GenerateConfig, Generation};
pub use sampling::{Sampler, SamplingConfig, TokenDistribution};
pub use stepper::{StepInput, StepOutput, Stepper};
