//! Thinking states `h`: the vector a thinking position mixes into its token embedding, from one of
//! two sources that differ in scale, so the choice is explicit ([`ThinkingSource`]):
//!
//! - **probability-weighted** (HRPO): `h = Eᵀp / ‖p‖₂`, `p` the distribution the token was sampled
//!   from (after temperature / top-k / top-p), `E` the input embedding `[vocab, hidden]`. A one-hot
//!   `p` gives exactly `E[token]`, so `h` has about one embedding's norm. With truncation only the
//!   kept rows of `E` are gathered.
//! - **learned projection** (design documents 001/002): `h = W_p·hidden / (‖W_p·hidden‖₂ + 1e−8)`,
//!   `hidden` the final hidden state of the step that produced the token, `W_p` =
//!   `thinking_projection`, Linear(H, H, no bias), init N(0, 0.001). `h` has norm 1.

use burn::module::{Initializer, Param};
use burn::prelude::*;
use burn::tensor::module::embedding;
use burn::tensor::DType;
use serde::{Deserialize, Serialize};

use crate::hf::safetensors::{Checkpoint, HostTensor};
use crate::infer::TokenDistribution;
use crate::model::flat_linear;
use crate::Result;

/// HRPO-style module name of the projection (a child of the base model, like the residual).
pub const PROJECTION_MODULE: &str = "thinking_projection";

/// Where thinking states come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThinkingSource {
    /// HRPO: `Eᵀp / ‖p‖₂` (about one embedding's norm).
    #[default]
    ProbabilityWeighted,
    /// `normalize(W_p · hidden)` through a [`ThinkingProjection`] (norm 1).
    Projection,
}

/// `thinking_projection`: `W_p` `[hidden, hidden]` (Burn layout), no bias.
#[derive(Module, Debug)]
pub struct ThinkingProjection<B: Backend> {
    /// `[in, out]` (PyTorch stores `[out, in]`).
    pub weight: Param<Tensor<B, 2>>,
}

impl<B: Backend> ThinkingProjection<B> {
    /// A fresh projection, N(0, `std`) (the documents use 0.001), from the backend's RNG.
    pub fn new(hidden: usize, std: f64, device: &B::Device) -> Self {
        Self {
            weight: Initializer::Normal { mean: 0.0, std }.init([hidden, hidden], device),
        }
    }

    /// `normalize(W_p · hidden)`: `[..., hidden]` → `[..., hidden]` with unit L2 norm (eps 1e-8),
    /// computed in f32.
    pub fn forward<const D: usize>(&self, hidden: Tensor<B, D>) -> Tensor<B, D> {
        let y = flat_linear(hidden, self.weight.val(), None).cast(DType::F32);
        // sqrt(Σy² + 1e-16) instead of sqrt(Σy²): the same value to 1e-8, and a finite gradient at
        // y = 0 (a zero input, e.g. a prompt position, would otherwise give 0 · inf = NaN).
        let norm = (y.clone().square().sum_dim(D - 1) + 1e-16).sqrt() + 1e-8;
        y / norm
    }

    /// `thinking_projection.weight` `[out, in]` under `prefix`, f32.
    pub fn hf_tensors(&self, prefix: &str) -> Vec<(String, HostTensor)> {
        vec![(
            format!("{prefix}{PROJECTION_MODULE}.weight"),
            super::residual::host(self.weight.val()).transposed(),
        )]
    }

    /// Replaces the weight with `prefix` + `thinking_projection.weight`, converted to `dtype`.
    /// Returns the key read.
    pub fn load_hf(
        mut self,
        checkpoint: &Checkpoint,
        prefix: &str,
        dtype: DType,
    ) -> Result<(Self, String)> {
        let key = format!("{prefix}{PROJECTION_MODULE}.weight");
        let [h, _] = self.weight.dims();
        let t = checkpoint.read_shaped(&key, &[h, h], "the thinking projection")?;
        self.weight = super::residual::replace(&self.weight, t.transposed(), dtype);
        Ok((self, key))
    }
}

/// HRPO's thinking states of several rows: `Eᵀp / ‖p‖₂` for each distribution, `[rows, hidden]`
/// f32. `embed` is the input embedding `[vocab, hidden]`. Truncated distributions gather only their
/// kept rows; full ones are one `[rows, vocab] × [vocab, hidden]` product.
pub fn probability_weighted<B: Backend>(
    embed: Tensor<B, 2>,
    distributions: &[&TokenDistribution],
) -> Tensor<B, 2> {
    let device = embed.device();
    let [vocab, h] = embed.dims();
    if distributions.iter().all(|d| d.kept.is_none()) {
        let n = distributions.len();
        let mut flat = Vec::with_capacity(n * vocab);
        let mut norms = Vec::with_capacity(n);
        for d in distributions {
            flat.extend_from_slice(&d.probs);
            norms.push(l2(d.probs.iter().copied()));
        }
        let p = Tensor::<B, 2>::from_data(TensorData::new(flat, [n, vocab]), &device);
        let norms = Tensor::<B, 2>::from_data(TensorData::new(norms, [n, 1]), &device);
        return p.matmul(embed.cast(DType::F32)) / norms;
    }
    let rows = distributions
        .iter()
        .map(|d| match &d.kept {
            Some(kept) => {
                let ids: Vec<i64> = kept.iter().map(|&t| i64::from(t)).collect();
                let probs: Vec<f32> = kept.iter().map(|&t| d.probs[t as usize]).collect();
                let norm = l2(probs.iter().copied());
                let k = ids.len();
                let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, k]), &device);
                let w = Tensor::<B, 2>::from_data(TensorData::new(probs, [1, k]), &device);
                let rows = embedding(embed.clone(), ids)
                    .reshape([k, h])
                    .cast(DType::F32);
                w.matmul(rows) / norm
            }
            None => {
                let p = Tensor::<B, 2>::from_data(
                    TensorData::new(d.probs.clone(), [1, vocab]),
                    &device,
                );
                p.matmul(embed.clone().cast(DType::F32)) / l2(d.probs.iter().copied())
            }
        })
        .collect();
    Tensor::cat(rows, 0)
}

/// Euclidean norm of `values`, accumulated in f64.
fn l2(values: impl Iterator<Item = f32>) -> f32 {
    values
        .map(|p| f64::from(p) * f64::from(p))
        .sum::<f64>()
        .sqrt() as f32
}
