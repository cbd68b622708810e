//! The scorer's losses: MSE to the score (design 003), BCE with logits, and LatentRM's listwise
//! objective (a log-softmax across the N paths of one question, weighted by their labels).

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use latent_core::model::to_f32;
use serde::{Deserialize, Serialize};

/// Which loss trains the scorer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Mean squared error between the raw value and the label in [0, 1] (design 003).
    #[default]
    Mse,
    /// Binary cross-entropy with logits against the label.
    Bce,
    /// Per question and per scored position: `−Σᵢ yᵢ · log_softmax(v)ᵢ` over its N paths, averaged
    /// over positions and questions (LatentRM; labels are raw success rates, not normalised).
    Listwise,
}

impl LossKind {
    /// Whether batches must hold whole questions (all N paths of each).
    pub fn needs_groups(self) -> bool {
        self == LossKind::Listwise
    }

    /// A value `[n]` as a probability of being right, for calibration metrics and weighted votes:
    /// clamped to [0, 1] for MSE, the sigmoid for BCE and listwise (whose values are logits up to a
    /// per-question shift, so only their order is meaningful).
    pub fn probability(self, value: f32) -> f32 {
        match self {
            LossKind::Mse => value.clamp(0.0, 1.0),
            LossKind::Bce | LossKind::Listwise => 1.0 / (1.0 + (-value).exp()),
        }
    }
}

/// The loss of `values` `[batch, k]` against `labels` `[batch, k]` (k = 1 pooled, or the steps),
/// the batch made of consecutive `groups` (paths per question, in order; used by the listwise loss).
pub fn prm_loss<B: Backend>(
    kind: LossKind,
    values: Tensor<B, 2>,
    labels: Tensor<B, 2>,
    groups: &[usize],
) -> Tensor<B, 1> {
    // In f32 whatever the compute dtype.
    let (values, labels) = (to_f32(values), to_f32(labels));
    match kind {
        LossKind::Mse => (values - labels).powi_scalar(2).mean(),
        LossKind::Bce => {
            // max(v, 0) − v·y + log(1 + exp(−|v|)), the stable form.
            let softplus_neg_abs = (values.clone().abs().neg().exp() + 1.0).log();
            (values.clone().clamp_min(0.0) - values * labels + softplus_neg_abs).mean()
        }
        LossKind::Listwise => listwise(values, labels, groups),
    }
}

fn listwise<B: Backend>(
    values: Tensor<B, 2>,
    labels: Tensor<B, 2>,
    groups: &[usize],
) -> Tensor<B, 1> {
    let [b, k] = values.dims();
    assert_eq!(
        groups.iter().sum::<usize>(),
        b,
        "groups must cover the batch"
    );
    let mut start = 0;
    let mut terms = Vec::with_capacity(groups.len());
    for &n in groups {
        let v = values.clone().slice([start..start + n, 0..k]);
        let y = labels.clone().slice([start..start + n, 0..k]);
        terms.push((log_softmax(v, 0) * y).sum().neg() / k as f64);
        start += n;
    }
    Tensor::cat(terms, 0).mean()
}
