//! The projection of CODI's continuous thoughts: `Linear(D, prj_dim) → GELU (erf) → Linear(prj_dim,
//! D) → LayerNorm(D)`, applied to the last hidden state before it is fed back as an input embedding.

use burn::module::Param;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu;
use latent_core::hf::safetensors::{Checkpoint, HostTensor};
use latent_core::model::FlatForward;
use serde::{Deserialize, Serialize};

use crate::{CodiError, Result};

/// Shape of the projection.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectionConfig {
    /// Model width `D`.
    pub hidden: usize,
    /// Inner width (`prj_dim`; the reference uses `D`).
    pub dim: usize,
    /// Whether a LayerNorm ends the projection (`--prj_no_ln` turns it off).
    pub layer_norm: bool,
    /// Dropout on the input (the reference uses 0).
    #[serde(default)]
    pub dropout: f64,
}

/// The projection module (PyTorch initialisation: Kaiming-uniform linears, unit LayerNorm).
#[derive(Module, Debug)]
pub struct Projection<B: Backend> {
    /// `[D, prj_dim]`.
    pub fc1: Linear<B>,
    /// `[prj_dim, D]`.
    pub fc2: Linear<B>,
    /// LayerNorm over `D` (eps 1e-5), unless disabled.
    pub norm: Option<LayerNorm<B>>,
    dropout: Dropout,
}

/// The reference code's `nn.Sequential` indices of the two linears and the norm, used as keys in
/// `projection.safetensors` so that PyTorch code loads it as `prj.{1,3,4}.{weight,bias}`.
const TORCH_KEYS: [&str; 3] = ["prj.1", "prj.3", "prj.4"];

impl ProjectionConfig {
    /// A freshly initialised projection.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Projection<B> {
        Projection {
            fc1: LinearConfig::new(self.hidden, self.dim).init(device),
            fc2: LinearConfig::new(self.dim, self.hidden).init(device),
            norm: self
                .layer_norm
                .then(|| LayerNormConfig::new(self.hidden).init(device)),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

impl<B: Backend> Projection<B> {
    /// `[..., D]` → `[..., D]`.
    pub fn forward<const N: usize>(&self, x: Tensor<B, N>) -> Tensor<B, N> {
        let x = self
            .fc2
            .forward_flat(gelu(self.fc1.forward_flat(self.dropout.forward(x))));
        match &self.norm {
            Some(norm) => norm.forward(x),
            None => x,
        }
    }

    /// The weights under PyTorch names (`prj.1.weight` `[prj_dim, D]`, ...), as the reference saves them.
    pub fn torch_tensors(&self) -> Vec<(String, HostTensor)> {
        let host = |t: Tensor<B, 2>| to_host(t).transposed();
        let mut out = Vec::new();
        for (key, linear) in TORCH_KEYS.iter().zip([&self.fc1, &self.fc2]) {
            out.push((format!("{key}.weight"), host(linear.weight.val())));
            if let Some(bias) = &linear.bias {
                out.push((format!("{key}.bias"), to_host(bias.val())));
            }
        }
        if let Some(norm) = &self.norm {
            out.push((
                format!("{}.weight", TORCH_KEYS[2]),
                to_host(norm.gamma.val()),
            ));
            if let Some(beta) = &norm.beta {
                out.push((format!("{}.bias", TORCH_KEYS[2]), to_host(beta.val())));
            }
        }
        out
    }

    /// Replaces the weights by those saved by [`Projection::torch_tensors`] (every key required).
    pub fn load_torch(mut self, checkpoint: &Checkpoint) -> Result<Self> {
        let device = self.fc1.weight.device();
        let read = |key: String, shape: Vec<usize>| -> Result<HostTensor> {
            let t = checkpoint
                .read(&key)?
                .ok_or_else(|| CodiError::Checkpoint {
                    path: checkpoint.location(),
                    reason: format!("missing tensor `{key}`"),
                })?;
            if t.shape != shape {
                return Err(CodiError::Checkpoint {
                    path: checkpoint.location(),
                    reason: format!("`{key}` has shape {:?}, expected {shape:?}", t.shape),
                });
            }
            Ok(t)
        };
        for (key, linear) in TORCH_KEYS.iter().zip([&mut self.fc1, &mut self.fc2]) {
            let [d_in, d_out] = linear.weight.dims();
            let w = read(format!("{key}.weight"), vec![d_out, d_in])?.transposed();
            linear.weight = param(w, &device, &linear.weight);
            if let Some(bias) = linear.bias.as_mut() {
                let b = read(format!("{key}.bias"), vec![d_out])?;
                *bias = param(b, &device, bias);
            }
        }
        if let Some(norm) = self.norm.as_mut() {
            let d = norm.gamma.dims()[0];
            let g = read(format!("{}.weight", TORCH_KEYS[2]), vec![d])?;
            norm.gamma = param(g, &device, &norm.gamma);
            if let Some(beta) = norm.beta.as_mut() {
                let b = read(format!("{}.bias", TORCH_KEYS[2]), vec![d])?;
                *beta = param(b, &device, beta);
            }
        }
        Ok(self)
    }
}

fn to_host<B: Backend, const D: usize>(t: Tensor<B, D>) -> HostTensor {
    let data = t.into_data().convert::<f32>();
    HostTensor {
        shape: data.shape.to_vec(),
        data: data.into_vec().expect("f32 data"),
    }
}

/// A parameter holding `host`, with the dtype, id and `require_grad` flag of `like`.
fn param<B: Backend, const D: usize>(
    host: HostTensor,
    device: &B::Device,
    like: &Param<Tensor<B, D>>,
) -> Param<Tensor<B, D>> {
    let current = like.val();
    let t = Tensor::<B, D>::from_data(
        TensorData::new(host.data, host.shape),
        (device, current.dtype()),
    );
    Param::initialized(like.id, t.set_require_grad(current.is_require_grad()))
}
