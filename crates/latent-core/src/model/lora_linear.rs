//! The LoRA pieces of a model: a low-rank pair `A`, `B` and the linear layer that can carry one.

use burn::module::{Initializer, Param};
use burn::nn::{Dropout, Linear};
use burn::prelude::*;

use crate::model::flat_linear;

/// A low-rank update `scaling · dropout(x) A B` of a `[d_in, d_out]` projection.
///
/// Burn layout: `lora_a` is `[d_in, r]`, `lora_b` is `[r, d_out]` (PEFT stores their transposes,
/// `lora_A.weight` `[r, d_in]` and `lora_B.weight` `[d_out, r]`).
#[derive(Module, Debug)]
pub struct LoraPair<B: Backend> {
    /// Down projection `[d_in, r]`.
    pub lora_a: Param<Tensor<B, 2>>,
    /// Up projection `[r, d_out]`.
    pub lora_b: Param<Tensor<B, 2>>,
    /// `lora_alpha / r` (or `lora_alpha / sqrt(r)` with rsLoRA).
    pub scaling: f64,
    dropout: Dropout,
}

impl<B: Backend> LoraPair<B> {
    /// A fresh pair initialised as PEFT does: `A` kaiming-uniform with `a = sqrt(5)`, i.e.
    /// U(-1/sqrt(d_in), 1/sqrt(d_in)), and `B = 0`, so the update is zero until trained.
    pub fn new(
        [d_in, d_out]: [usize; 2],
        r: usize,
        scaling: f64,
        dropout: f64,
        device: &B::Device,
    ) -> Self {
        let bound = 1.0 / (d_in as f64).sqrt();
        let lora_a: Param<Tensor<B, 2>> = Initializer::Uniform {
            min: -bound,
            max: bound,
        }
        .init([d_in, r], device);
        // Drawn now, from the generator as the caller seeded it (`seed_backend`), not lazily at
        // first use, wherever (and on whichever thread) that happens.
        let _ = lora_a.val();
        Self {
            lora_a,
            lora_b: Initializer::Zeros.init([r, d_out], device),
            scaling,
            dropout: Dropout { prob: dropout },
        }
    }

    /// A pair from given matrices `a` `[d_in, r]` and `b` `[r, d_out]` (both trainable).
    pub fn from_tensors(a: Tensor<B, 2>, b: Tensor<B, 2>, scaling: f64, dropout: f64) -> Self {
        Self {
            lora_a: Param::from_tensor(a),
            lora_b: Param::from_tensor(b),
            scaling,
            dropout: Dropout { prob: dropout },
        }
    }

    /// The rank `r`.
    pub fn rank(&self) -> usize {
        self.lora_a.shape().dims::<2>()[1]
    }

    /// The update of `x`: `[..., d_in]` → `[..., d_out]`. Dropout acts only under autodiff.
    pub fn delta<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let low = flat_linear(self.dropout.forward(x), self.lora_a.val(), None);
        flat_linear(low, self.lora_b.val(), None) * self.scaling
    }

    /// The dense update `scaling · A B`, `[d_in, d_out]`: what merging adds to the base weight.
    pub fn dense(&self) -> Tensor<B, 2> {
        self.lora_a.val().matmul(self.lora_b.val()) * self.scaling
    }
}

/// A linear layer `[d_in, d_out]` (Burn layout, like [`Linear`]) that may carry a LoRA update.
///
/// The base fields keep [`Linear`]'s names, so parameter paths (`…q_proj.weight`) and hence
/// checkpoint keys are those of a plain linear layer.
#[derive(Module, Debug)]
pub struct LoraLinear<B: Backend> {
    /// Base weight `[d_in, d_out]`.
    pub weight: Param<Tensor<B, 2>>,
    /// Base bias `[d_out]`.
    pub bias: Option<Param<Tensor<B, 1>>>,
    /// The adapter, when one is attached.
    pub lora: Option<LoraPair<B>>,
}

impl<B: Backend> From<Linear<B>> for LoraLinear<B> {
    fn from(l: Linear<B>) -> Self {
        Self {
            weight: l.weight,
            bias: l.bias,
            lora: None,
        }
    }
}

impl<B: Backend> LoraLinear<B> {
    /// `[d_in, d_out]` of the base weight.
    pub fn dims(&self) -> [usize; 2] {
        self.weight.shape().dims()
    }

    /// Base output plus the adapter's update: `[..., d_in]` → `[..., d_out]`.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let base = flat_linear(
            x.clone(),
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
        );
        match &self.lora {
            Some(lora) => base + lora.delta(x),
            None => base,
        }
    }
}

/// Adds `delta` `[d_in, d_out]` to a weight, keeping its id and its `require_grad` flag; the result
/// is detached from the graph that produced `delta`.
pub(crate) fn add_to_weight<B: Backend>(
    weight: Param<Tensor<B, 2>>,
    delta: Tensor<B, 2>,
) -> Param<Tensor<B, 2>> {
    weight.map(|w| {
        let require_grad = w.is_require_grad();
        (w + delta).detach().set_require_grad(require_grad)
    })
}

/// Whether a parameter path names an adapter matrix (`….lora_a` / `….lora_b`): such parameters have
/// no key in a base checkpoint.
pub fn is_adapter_param(path: &str) -> bool {
    path.ends_with(".lora_a") || path.ends_with(".lora_b")
}
