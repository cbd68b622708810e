//! Inference: the key/value cache, the stepper that drives token-or-vector decoding, sampling and
//! `generate`.

pub mod generate;
pub mod kv_cache;
pub mod sampling;
pub mod stepper;

pub use generate::{generate, GenerateConfig, Generation};
pub use kv_cache::{KvCache, LayerKv};
pub use sampling::{Sampler, SamplingConfig};
pub use stepper::{StepInput, StepOutput, Stepper};
