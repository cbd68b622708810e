//! HRPO's thinking residual: a gated fusion of a token embedding `e` and a thinking state `h`, per
//! hidden dimension (Yue et al. 2025, the patched `Qwen2Model.thinking_residual`):
//!
//! ```text
//! r = σ(W_r e + b_r)      i = σ(W_i e + b_i)          (the gates see only e)
//! a = exp(−c · softplus(−Λ) · r),  c = 8
//! x = a ⊙ e + sqrt(1 − a² + 1e−8) ⊙ (i ⊙ h)
//! ```
//!
//! Λ is initialised from `u ~ U(r_min, r_max)` as `Λ = −log(u^(−1/c) − 1)`, which makes `a = u^r`
//! exactly; with the defaults (0.99, 0.999) and `r ≈ 0.5` the model starts close to the base model
//! (`a ≈ 0.995`). Λ is kept in f32 whatever the compute dtype, and the fusion is computed in f32.
//!
//! Checkpoint names are HRPO's: `thinking_residual_gate_r.{weight,bias}`,
//! `thinking_residual_gate_i.{weight,bias}` (PyTorch `[out, in]`) and
//! `thinking_residual_Lambda.Lambda`, under `model.` ([`ThinkingResidual::hf_tensors`]).

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use burn::tensor::{DType, Distribution};
use serde::{Deserialize, Serialize};

use crate::hf::safetensors::{Checkpoint, HostTensor};
use crate::model::{init_linear, FlatForward};
use crate::{CoreError, Result};

/// The constant `c` of HRPO's `ThinkingResidualLambda`.
pub const LAMBDA_SCALE: f64 = 8.0;

/// Module names of the residual's parts in HRPO's code (children of `Qwen2Model`).
pub const RESIDUAL_MODULES: [&str; 3] = [
    "thinking_residual_gate_r",
    "thinking_residual_gate_i",
    "thinking_residual_Lambda",
];

/// How a fresh residual is initialised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThinkingResidualConfig {
    /// Lower bound of `u` (HRPO's `--residual_r_min`).
    pub r_min: f64,
    /// Upper bound of `u` (`--residual_r_max`).
    pub r_max: f64,
    /// Std of the gate weights (transformers' `initializer_range`; biases start at 0).
    pub gate_std: f64,
}

impl Default for ThinkingResidualConfig {
    fn default() -> Self {
        Self {
            r_min: 0.99,
            r_max: 0.999,
            gate_std: 0.02,
        }
    }
}

impl ThinkingResidualConfig {
    /// A fresh residual of width `hidden`, drawn from the backend's RNG (see
    /// [`crate::seed_backend`]). Errors unless `0 < r_min <= r_max < 1`.
    pub fn init<B: Backend>(
        &self,
        hidden: usize,
        device: &B::Device,
    ) -> Result<ThinkingResidual<B>> {
        if !(self.r_min > 0.0 && self.r_min <= self.r_max && self.r_max < 1.0) {
            return Err(CoreError::Shape(format!(
                "thinking residual: need 0 < r_min <= r_max < 1, got r_min {} and r_max {}",
                self.r_min, self.r_max
            )));
        }
        let u = Tensor::<B, 1>::random(
            [hidden],
            Distribution::Uniform(self.r_min, self.r_max),
            device,
        );
        Ok(ThinkingResidual {
            gate_r: init_linear(hidden, hidden, true, self.gate_std, device),
            gate_i: init_linear(hidden, hidden, true, self.gate_std, device),
            lambda: Param::from_tensor(lambda_from_u(u)),
        })
    }
}

/// `Λ = −log(u^(−1/c) − 1)`, the value for which `a = u^r`.
pub fn lambda_from_u<B: Backend>(u: Tensor<B, 1>) -> Tensor<B, 1> {
    (u.log().mul_scalar(-1.0 / LAMBDA_SCALE).exp() - 1.0)
        .log()
        .neg()
}

/// The gated fusion of token embeddings and thinking states.
#[derive(Module, Debug)]
pub struct ThinkingResidual<B: Backend> {
    /// `thinking_residual_gate_r`: `[hidden, hidden]` (Burn layout) with bias.
    pub gate_r: Linear<B>,
    /// `thinking_residual_gate_i`: `[hidden, hidden]` with bias.
    pub gate_i: Linear<B>,
    /// `thinking_residual_Lambda.Lambda`: Λ `[hidden]`, f32.
    pub lambda: Param<Tensor<B, 1>>,
}

/// The fused input and the retention gate of a [`ThinkingResidual`].
#[derive(Debug, Clone)]
pub struct Fused<B: Backend> {
    /// `x`, `[..., hidden]`, in the dtype of the embedding.
    pub x: Tensor<B, 3>,
    /// `a`, `[..., hidden]`, f32: the share of the token embedding kept.
    pub a: Tensor<B, 3>,
}

impl<B: Backend> ThinkingResidual<B> {
    /// A residual of width `hidden` whose parameters are created lazily (as zeros) and meant to be
    /// replaced by [`ThinkingResidual::load_hf`]: nothing is drawn from the RNG.
    pub fn unloaded(hidden: usize, device: &B::Device) -> Self {
        Self {
            gate_r: init_linear(hidden, hidden, true, 0.0, device),
            gate_i: init_linear(hidden, hidden, true, 0.0, device),
            lambda: burn::module::Initializer::Zeros.init([hidden], device),
        }
    }

    /// Width of the residual.
    pub fn hidden(&self) -> usize {
        self.lambda.shape().dims::<1>()[0]
    }

    /// Fuses `e` (token embeddings) and `h` (thinking states), both `[batch, seq, hidden]`.
    /// The gates run in the weights' dtype, the rest in f32; `x` comes back in `e`'s dtype.
    pub fn forward(&self, e: Tensor<B, 3>, h: Tensor<B, 3>) -> Fused<B> {
        let dtype = e.dtype();
        let r = sigmoid(self.gate_r.forward_flat(e.clone())).cast(DType::F32);
        let i = sigmoid(self.gate_i.forward_flat(e.clone())).cast(DType::F32);
        let rate = stable_softplus(self.lambda.val().cast(DType::F32).neg())
            .mul_scalar(-LAMBDA_SCALE)
            .unsqueeze::<3>();
        let a = (rate * r).exp();
        let keep = (a.clone().square().neg() + (1.0 + 1e-8)).sqrt();
        let x = a.clone() * e.cast(DType::F32) + keep * (i * h.cast(DType::F32));
        Fused {
            x: x.cast(dtype),
            a,
        }
    }

    /// The same residual with the gates in `dtype` and Λ kept in f32.
    pub fn cast(self, dtype: DType) -> Self {
        Self {
            gate_r: crate::model::cast_module(self.gate_r, dtype),
            gate_i: crate::model::cast_module(self.gate_i, dtype),
            lambda: self.lambda,
        }
    }

    /// The parameters under HRPO's names (`thinking_residual_gate_r.weight` `[out, in]`, …,
    /// `thinking_residual_Lambda.Lambda`), each prefixed by `prefix` (e.g. `model.`), in f32.
    pub fn hf_tensors(&self, prefix: &str) -> Vec<(String, HostTensor)> {
        let mut out = Vec::new();
        for (name, gate) in RESIDUAL_MODULES.iter().zip([&self.gate_r, &self.gate_i]) {
            out.push((
                format!("{prefix}{name}.weight"),
                host(gate.weight.val()).transposed(),
            ));
            if let Some(bias) = &gate.bias {
                out.push((format!("{prefix}{name}.bias"), host(bias.val())));
            }
        }
        out.push((
            format!("{prefix}{}.Lambda", RESIDUAL_MODULES[2]),
            host(self.lambda.val()),
        ));
        out
    }

    /// Replaces every parameter with the tensor stored under its HRPO name after `prefix`; the gates
    /// are converted to `dtype`, Λ stays f32. Returns the keys read. Parameter ids are kept.
    pub fn load_hf(
        mut self,
        checkpoint: &Checkpoint,
        prefix: &str,
        dtype: DType,
    ) -> Result<(Self, Vec<String>)> {
        let h = self.hidden();
        let mut used = Vec::new();
        let mut read = |key: String, shape: &[usize]| -> Result<HostTensor> {
            let t = checkpoint.read_shaped(&key, shape, "the thinking residual")?;
            used.push(key);
            Ok(t)
        };
        for (name, gate) in RESIDUAL_MODULES
            .iter()
            .zip([&mut self.gate_r, &mut self.gate_i])
        {
            let w = read(format!("{prefix}{name}.weight"), &[h, h])?.transposed();
            gate.weight = replace(&gate.weight, w, dtype);
            if let Some(bias) = gate.bias.as_mut() {
                let b = read(format!("{prefix}{name}.bias"), &[h])?;
                *bias = replace(bias, b, dtype);
            }
        }
        let lambda = read(format!("{prefix}{}.Lambda", RESIDUAL_MODULES[2]), &[h])?;
        self.lambda = replace(&self.lambda, lambda, DType::F32);
        Ok((self, used))
    }
}

/// `softplus(z) = max(z, 0) + log(1 + exp(−|z|))`, finite for every z (torch's softplus within
/// rounding; its `threshold = 20` shortcut differs by less than 1e-8).
fn stable_softplus<B: Backend, const D: usize>(z: Tensor<B, D>) -> Tensor<B, D> {
    z.clone().clamp_min(0.0) + z.abs().neg().exp().log1p()
}

/// A parameter holding `host` in `dtype`, with the id, device and `require_grad` flag of `like`.
pub(crate) fn replace<B: Backend, const D: usize>(
    like: &Param<Tensor<B, D>>,
    host: HostTensor,
    dtype: DType,
) -> Param<Tensor<B, D>> {
    // A lazy parameter is never materialised (it would be drawn for nothing); it would be trainable.
    let require_grad = !like.is_initialized() || like.val().is_require_grad();
    let t = Tensor::<B, D>::from_data(
        TensorData::new(host.data, host.shape),
        (&like.lazy_device(), dtype),
    );
    Param::initialized(like.id, t.set_require_grad(require_grad))
}

/// A tensor on the host in f32.
pub(crate) fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> HostTensor {
    let data = t.into_data().convert::<f32>();
    HostTensor {
        shape: data.shape.to_vec(),
        data: data.into_vec().expect("converted to f32"),
    }
}
