//! Mixed-precision training as PyTorch autocast users know it: the trainable parameters and the
//! optimizer state stay in f32 (the *master* copy), each update's forward and backward run on a copy
//! of the model cast to bf16 or f16, and the gradients come back to f32 before clipping and the
//! optimizer step. Frozen parameters (a LoRA run's base model) are kept in the compute dtype only.
//! f16 adds PyTorch's dynamic loss scaling ([`LossScale`]): the loss is multiplied by the scale before
//! the backward pass, the gradients divided by it, and an update whose gradients overflow is skipped
//! while the scale halves.
//!
//! The model code keeps the numerically sensitive parts in f32 whatever the compute dtype: norm
//! statistics (`model::norm`), the attention softmax (`model::attention`), the thinking residual's
//! gates and Λ (`latent::residual`), and every loss's log-softmax.

use std::fmt;
use std::str::FromStr;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::DType;
use serde::{Deserialize, Serialize};

/// The numerics of a training run (`train.precision` in every run config).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Forward, backward and update in the parameters' own dtype (f32 unless the model was loaded
    /// in another dtype); no master copy.
    #[default]
    F32,
    /// Forward and backward in bf16, f32 master weights and optimizer state.
    Bf16,
    /// Forward and backward in f16 with dynamic loss scaling, f32 master weights and optimizer state.
    F16,
}

impl Precision {
    /// The dtype forward and backward run in (`None` for [`Precision::F32`]: the parameters' own).
    pub fn compute_dtype(self) -> Option<DType> {
        match self {
            Precision::F32 => None,
            Precision::Bf16 => Some(DType::BF16),
            Precision::F16 => Some(DType::F16),
        }
    }

    /// The loss scale a run in this precision starts with (`None`: no scaling).
    pub fn initial_loss_scale(self) -> Option<LossScale> {
        (self == Precision::F16).then(LossScale::default)
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        })
    }
}

impl FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "f16" | "fp16" | "float16" => Ok(Precision::F16),
            other => Err(format!(
                "unknown precision `{other}` (expected f32, bf16 or f16)"
            )),
        }
    }
}

/// Dynamic loss scale of an f16 run, with PyTorch `GradScaler`'s defaults: 2¹⁶ at the start, halved
/// on an update whose gradients are not finite (that update is skipped), doubled after 2,000
/// updates in a row without overflow. Kept in the run's [`super::Position`] so a resumed run goes
/// on with the same scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossScale {
    /// log₂ of the scale.
    pub log2: i32,
    /// Updates since the last overflow or growth.
    pub good_updates: usize,
}

/// Updates without overflow after which the scale doubles.
const GROWTH_INTERVAL: usize = 2000;

impl Default for LossScale {
    fn default() -> Self {
        Self {
            log2: 16,
            good_updates: 0,
        }
    }
}

impl LossScale {
    /// The factor the loss is multiplied by.
    pub fn factor(&self) -> f64 {
        2f64.powi(self.log2)
    }

    /// The scale after an update whose gradients were finite (`finite`) or not.
    pub fn after_update(self, finite: bool) -> Self {
        if !finite {
            return Self {
                log2: self.log2 - 1,
                good_updates: 0,
            };
        }
        if self.good_updates + 1 >= GROWTH_INTERVAL {
            Self {
                log2: self.log2 + 1,
                good_updates: 0,
            }
        } else {
            Self {
                log2: self.log2,
                good_updates: self.good_updates + 1,
            }
        }
    }
}

/// Parameters the model code uses in f32 whatever the compute dtype (by the last segment of their
/// module path): the thinking residual's Λ (`latent::residual`). The working copy keeps them f32.
pub const KEPT_IN_F32: &[&str] = &["lambda"];

/// Casts every trainable parameter to `trainable` and every frozen one to `frozen`, except the
/// [`KEPT_IN_F32`] ones (ids and `require_grad` flags kept; parameters already in their dtype are
/// shared, not copied).
struct PrecisionCast {
    trainable: DType,
    frozen: DType,
    path: Vec<String>,
}

impl PrecisionCast {
    fn new(trainable: DType, frozen: DType) -> Self {
        Self {
            trainable,
            frozen,
            path: Vec::new(),
        }
    }
}

impl<B: Backend> ModuleMapper<B> for PrecisionCast {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let tensor = param.val();
        let require_grad = tensor.is_require_grad();
        let kept = self
            .path
            .last()
            .is_some_and(|name| KEPT_IN_F32.contains(&name.as_str()));
        let dtype = if kept {
            DType::F32
        } else if require_grad {
            self.trainable
        } else {
            self.frozen
        };
        if tensor.dtype() == dtype {
            return param;
        }
        Param::initialized(
            param.id,
            tensor.cast(dtype).detach().set_require_grad(require_grad),
        )
    }
}

/// The master copy of `module` for a run in `precision`: trainable parameters in f32, frozen ones in
/// the compute dtype. Unchanged for [`Precision::F32`].
pub fn master_copy<B: AutodiffBackend, M: AutodiffModule<B>>(module: M, precision: Precision) -> M {
    match precision.compute_dtype() {
        None => module,
        Some(compute) => module.map(&mut PrecisionCast::new(DType::F32, compute)),
    }
}

/// The copy of `master` an update's forward and backward run on: every parameter in the compute
/// dtype, with the master's parameter ids (so its gradients apply to the master). `master` itself
/// for [`Precision::F32`].
pub fn working_copy<B: AutodiffBackend, M: AutodiffModule<B>>(
    master: &M,
    precision: Precision,
) -> M {
    match precision.compute_dtype() {
        None => master.clone(),
        Some(compute) => master
            .clone()
            .map(&mut PrecisionCast::new(compute, compute)),
    }
}

/// Converts `grads` (of the working copy) to each master parameter's dtype and multiplies them by
/// `factor` (1 / the loss scale; 1 without scaling).
pub fn grads_to_master<B: AutodiffBackend, M: AutodiffModule<B>>(
    master: &M,
    grads: &mut GradientsParams,
    factor: f64,
) {
    struct ToMaster<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for ToMaster<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) else {
                return;
            };
            let dtype = param.val().dtype();
            let g = if g.dtype() == dtype { g } else { g.cast(dtype) };
            let g = if self.factor == 1.0 {
                g
            } else {
                g * self.factor
            };
            self.grads.register::<B::InnerBackend, D>(param.id, g);
        }
    }
    master.visit(&mut ToMaster { grads, factor });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_parses_and_prints_its_names() {
        for p in [Precision::F32, Precision::Bf16, Precision::F16] {
            assert_eq!(p.to_string().parse::<Precision>(), Ok(p));
        }
        assert_eq!("BF16".parse::<Precision>(), Ok(Precision::Bf16));
        let err = "int8".parse::<Precision>().unwrap_err();
        assert!(err.contains("int8") && err.contains("bf16"), "{err}");
        let json: Precision = serde_json::from_str("\"f16\"").expect("serde name");
        assert_eq!(json, Precision::F16);
    }

    #[test]
    fn loss_scale_halves_on_overflow_and_doubles_after_the_growth_interval() {
        let start = LossScale::default();
        assert_eq!(start.factor(), 65536.0);
        let after_overflow = start.after_update(false);
        assert_eq!(after_overflow.factor(), 32768.0);
        let mut s = after_overflow;
        for _ in 0..GROWTH_INTERVAL - 1 {
            s = s.after_update(true);
        }
        assert_eq!(s.log2, 15);
        assert_eq!(s.after_update(true).log2, 16);
        assert_eq!(s.after_update(true).good_updates, 0);
    }
}
