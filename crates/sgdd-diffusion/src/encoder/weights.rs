//! Reading encoder tensors out of a safetensors checkpoint into Burn layers (HF `[out, in]` linear
//! weights transposed to Burn's `[in, out]`; old `gamma`/`beta` LayerNorm names accepted).

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use latent_core::hf::safetensors::Checkpoint;
use latent_core::model::Norm;

use crate::{Result, SgddError};

/// A checkpoint and the key prefix its encoder lives under (`""`, `bert.`, `roberta.`).
pub struct Weights<'a, B: Backend> {
    checkpoint: &'a Checkpoint,
    prefix: String,
    device: B::Device,
}

impl<'a, B: Backend> Weights<'a, B> {
    /// Finds the prefix under which `embeddings.word_embeddings.weight` is stored.
    pub fn new(checkpoint: &'a Checkpoint, device: &B::Device) -> Result<Self> {
        let key = "embeddings.word_embeddings.weight";
        let prefix = ["", "bert.", "roberta.", "model."]
            .into_iter()
            .find(|p| checkpoint.contains(&format!("{p}{key}")))
            .ok_or_else(|| SgddError::Weights {
                location: checkpoint.location(),
                key: key.into(),
                reason: "not found (also looked under bert., roberta., model.)".into(),
            })?;
        Ok(Self {
            checkpoint,
            prefix: prefix.into(),
            device: device.clone(),
        })
    }

    /// The tensor under `key` (after the prefix), checked against `shape`.
    pub fn tensor<const D: usize>(&self, key: &str, shape: [usize; D]) -> Result<Tensor<B, D>> {
        let full = format!("{}{key}", self.prefix);
        let missing = |reason: String| SgddError::Weights {
            location: self.checkpoint.location(),
            key: full.clone(),
            reason,
        };
        let host = self
            .checkpoint
            .read(&full)?
            .ok_or_else(|| missing("missing".into()))?;
        if host.shape != shape {
            return Err(missing(format!(
                "expected shape {shape:?}, found {:?}",
                host.shape
            )));
        }
        Ok(Tensor::from_data(
            TensorData::new(host.data, shape),
            &self.device,
        ))
    }

    /// A linear layer `[d_in, d_out]` from HF `{key}.weight` `[d_out, d_in]` and `{key}.bias`.
    pub fn linear(&self, key: &str, d_in: usize, d_out: usize) -> Result<Linear<B>> {
        let weight = self
            .tensor(&format!("{key}.weight"), [d_out, d_in])?
            .transpose();
        let bias = self.tensor(&format!("{key}.bias"), [d_out])?;
        Ok(Linear {
            weight: Param::from_tensor(weight),
            bias: Some(Param::from_tensor(bias)),
        })
    }

    /// A LayerNorm of `width` from `{key}.weight`/`{key}.bias` (or `gamma`/`beta`).
    pub fn layer_norm(&self, key: &str, width: usize, eps: f64) -> Result<Norm<B>> {
        let old = self
            .checkpoint
            .contains(&format!("{}{key}.gamma", self.prefix));
        let (w, b) = if old {
            ("gamma", "beta")
        } else {
            ("weight", "bias")
        };
        let mut norm = Norm::new(
            latent_core::hf::config::NormKind::Layer,
            width,
            eps,
            &self.device,
        );
        norm.weight = Param::from_tensor(self.tensor(&format!("{key}.{w}"), [width])?);
        norm.bias = Some(Param::from_tensor(
            self.tensor(&format!("{key}.{b}"), [width])?,
        ));
        Ok(norm)
    }
}
