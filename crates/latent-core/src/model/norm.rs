//! RMSNorm and LayerNorm with Hugging Face numerics (statistics in f32, weight applied after).

use burn::module::{Initializer, Param};
use burn::prelude::*;
use burn::tensor::DType;

use crate::hf::config::NormKind;

/// A normalisation layer over the last axis: RMSNorm (`weight` only) or LayerNorm (`weight`, `bias`).
#[derive(Module, Debug)]
pub struct Norm<B: Backend> {
    /// Scale, `[width]`.
    pub weight: Param<Tensor<B, 1>>,
    /// Shift, `[width]` (LayerNorm only).
    pub bias: Option<Param<Tensor<B, 1>>>,
    eps: f64,
    kind: NormKind,
}

impl<B: Backend> Norm<B> {
    /// A norm of `width` with weight 1 and bias 0 (initialised lazily).
    pub fn new(kind: NormKind, width: usize, eps: f64, device: &B::Device) -> Self {
        Self {
            weight: Initializer::Ones.init([width], device),
            bias: (kind == NormKind::Layer).then(|| Initializer::Zeros.init([width], device)),
            eps,
            kind,
        }
    }

    /// Normalises over the last axis. Shape: `[..., width]` → `[..., width]`, same dtype.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dtype = x.dtype();
        let x = if dtype == DType::F32 {
            x
        } else {
            x.cast(DType::F32)
        };
        let normed = match self.kind {
            NormKind::Rms => {
                let mean_sq = x.clone().square().mean_dim(D - 1);
                x * (mean_sq + self.eps).sqrt().recip()
            }
            NormKind::Layer => {
                let centred = x.clone() - x.mean_dim(D - 1);
                let var = centred.clone().square().mean_dim(D - 1);
                centred * (var + self.eps).sqrt().recip()
            }
        };
        let normed = if dtype == DType::F32 {
            normed
        } else {
            normed.cast(dtype)
        };
        let out = normed * self.weight.val().unsqueeze::<D>();
        match &self.bias {
            Some(bias) => out + bias.val().unsqueeze::<D>(),
            None => out,
        }
    }
}
