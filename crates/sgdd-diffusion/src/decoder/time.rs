//! Sinusoidal timestep embedding followed by a two-layer SiLU MLP (DDPM/MDLM style).

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::silu;
use latent_core::model::{to_dtype, to_f32};

/// `t ∈ [0, 1]` → `[width]` vector added to every token.
#[derive(Module, Debug)]
pub struct TimeEmbedding<B: Backend> {
    /// `[width, width]`.
    pub fc1: Linear<B>,
    /// `[width, width]`.
    pub fc2: Linear<B>,
    width: usize,
}

/// The sinusoidal features of timesteps `steps` (`t × 1000`): `[batch]` → `[batch, width]`,
/// `[sin(k f_0), ..., sin(k f_{w/2-1}), cos(k f_0), ...]` with `f_i = 10000^(-i / (w/2))`.
pub fn sinusoidal<B: Backend>(steps: Tensor<B, 1>, width: usize) -> Tensor<B, 2> {
    let half = width / 2;
    let device = steps.device();
    let freqs: Vec<f32> = (0..half)
        .map(|i| (-(10_000f64.ln()) * i as f64 / half as f64).exp() as f32)
        .collect();
    let b = steps.dims()[0];
    let freqs = Tensor::<B, 1>::from_data(TensorData::new(freqs, [half]), &device)
        .reshape([1, half])
        .expand([b, half]);
    let angles = steps.reshape([b, 1]).expand([b, half]) * freqs;
    Tensor::cat(vec![angles.clone().sin(), angles.cos()], 1)
}

impl<B: Backend> TimeEmbedding<B> {
    /// A fresh embedding of `width` (even).
    pub fn new(width: usize, std: f64, device: &B::Device) -> Self {
        Self {
            fc1: super::linear(width, width, std, device),
            fc2: super::linear(width, width, std, device),
            width,
        }
    }

    /// `t` `[batch]` in `[0, 1]` → `[batch, width]`.
    pub fn forward(&self, t: Tensor<B, 1>) -> Tensor<B, 2> {
        // Angles up to 1000 rad in f32 whatever the weights' dtype, then the weights' dtype.
        let x = sinusoidal(to_f32(t) * 1000.0, self.width);
        let x = to_dtype(x, self.fc1.weight.val().dtype());
        self.fc2.forward(silu(self.fc1.forward(x)))
    }
}
