//! Inference: the key/value cache, the stepper that drives token-or-vector decoding, sampling and
//! `generate`.

pub mod kv_cache;

pub use kv_cache::{KvCache, LayerKv};
