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

/// The reference code's names of the two linears and the norm, used as keys in
/// `projection.safetensors`: `nn.Sequential(Dropout, Linear, GELU, Linear)` gives `prj.1` and
/// `prj.3`, and the LayerNorm is added with `add_module("ln", ...)`, so its keys are `prj.ln.*`.
pub const TORCH_KEYS: [&str; 3] = ["prj.1", "prj.3", "prj.ln"];

/// The norm's keys as earlier versions of this crate wrote them (`prj.4.*`, its index in the
/// `Sequential`); still read.
pub const LEGACY_NORM_KEY: &str = "prj.4";

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

    /// Replaces the weights by those saved by [`Projection::torch_tensors`] (every key required;
    /// the norm is read from `prj.ln.*`, or from the legacy `prj.4.*` when `prj.ln.weight` is absent).
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
            let key = norm_key(checkpoint);
            let d = norm.gamma.dims()[0];
            let g = read(format!("{key}.weight"), vec![d])?;
            norm.gamma = param(g, &device, &norm.gamma);
            if let Some(beta) = norm.beta.as_mut() {
                let b = read(format!("{key}.bias"), vec![d])?;
                *beta = param(b, &device, beta);
            }
        }
        Ok(self)
    }
}

/// The key prefix of the projection's norm in `checkpoint`: `prj.ln`, or the legacy `prj.4` when
/// only that is present.
pub fn norm_key(checkpoint: &Checkpoint) -> &'static str {
    let legacy = format!("{LEGACY_NORM_KEY}.weight");
    if !checkpoint.contains(&format!("{}.weight", TORCH_KEYS[2])) && checkpoint.contains(&legacy) {
        LEGACY_NORM_KEY
    } else {
        TORCH_KEYS[2]
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use latent_core::CpuBackend;

    use super::*;

    fn config() -> ProjectionConfig {
        ProjectionConfig {
            hidden: 4,
            dim: 3,
            layer_norm: true,
            dropout: 0.0,
        }
    }

    fn max_diff<B: Backend>(a: &Projection<B>, b: &Projection<B>) -> f32 {
        let x = Tensor::<B, 2>::from_data(
            TensorData::new((0..8).map(|v| v as f32 * 0.3 - 1.0).collect(), [2, 4]),
            &Default::default(),
        );
        (a.forward(x.clone()) - b.forward(x))
            .abs()
            .max()
            .into_scalar()
            .elem()
    }

    #[test]
    fn writes_the_reference_names_and_reads_them_back() {
        let device = Default::default();
        let mut prj: Projection<CpuBackend> = config().init(&device);
        let norm = prj.norm.as_mut().unwrap();
        norm.gamma = norm.gamma.clone().map(|g| g.mul_scalar(1.5));
        let tensors = prj.torch_tensors();
        let keys: Vec<&str> = tensors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "prj.1.weight",
                "prj.1.bias",
                "prj.3.weight",
                "prj.3.bias",
                "prj.ln.weight",
                "prj.ln.bias"
            ]
        );
        assert_eq!(tensors[0].1.shape, [3, 4], "PyTorch layout [out, in]");
        let checkpoint = Checkpoint::from_tensors(PathBuf::from("p"), tensors);
        let loaded = config()
            .init::<CpuBackend>(&device)
            .load_torch(&checkpoint)
            .unwrap();
        assert!(max_diff(&prj, &loaded) < 1e-6);
    }

    #[test]
    fn reads_the_legacy_norm_name() {
        let device = Default::default();
        let mut prj: Projection<CpuBackend> = config().init(&device);
        let norm = prj.norm.as_mut().unwrap();
        norm.gamma = norm.gamma.clone().map(|g| g.mul_scalar(-2.0));
        let legacy: Vec<(String, HostTensor)> = prj
            .torch_tensors()
            .into_iter()
            .map(|(k, t)| (k.replace("prj.ln.", "prj.4."), t))
            .collect();
        let checkpoint = Checkpoint::from_tensors(PathBuf::from("p"), legacy.clone());
        assert_eq!(norm_key(&checkpoint), "prj.4");
        let loaded = config()
            .init::<CpuBackend>(&device)
            .load_torch(&checkpoint)
            .unwrap();
        assert!(max_diff(&prj, &loaded) < 1e-6);
        // Neither name: the error names the key it looked for.
        let no_norm: Vec<(String, HostTensor)> = legacy
            .into_iter()
            .filter(|(k, _)| !k.starts_with("prj.4"))
            .collect();
        let err = config()
            .init::<CpuBackend>(&device)
            .load_torch(&Checkpoint::from_tensors(PathBuf::from("p"), no_norm))
            .unwrap_err()
            .to_string();
        assert!(err.contains("prj.ln.weight"), "{err}");
    }
}
