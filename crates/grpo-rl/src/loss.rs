//! The GRPO loss with TRL's reductions (`GRPOTrainer._compute_loss`):
//!
//! ```text
//! ratio  = exp(logp − logp_old)                (logp_old = logp.detach() with one iteration)
//! token  = −min(ratio · A, clip(ratio, 1 − ε_low, 1 + ε_high) · A) + β · KL_k3
//! KL_k3  = exp(ref − logp) − (ref − logp) − 1
//! grpo    = mean over sequences of (Σ token · mask / Σ mask) per sequence
//! bnpo    = Σ token · mask / Σ mask            (over the micro-batch)
//! dr_grpo = Σ token · mask / (B · max_completion_length)
//! dapo    = Σ token · mask / (completion tokens of the whole accumulated batch)
//! ```
//!
//! The log-ratio and the KL's exponent are clamped to ±20 before `exp` (as verl does), so a padded
//! position cannot turn into `0 · inf = NaN` in backward. The value returned is TRL's before its
//! division by the accumulation steps (TRL divides `grpo`, `bnpo` and `dr_grpo` by them and not
//! `dapo`; the shared trainer divides every micro-batch loss by its window, so the GRPO step
//! multiplies `dapo` back, see [`LossType::trainer_scale`]).

use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// The reduction over tokens and sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossType {
    /// Mean over each sequence's tokens, then over sequences (TRL's `grpo`; HRPO).
    #[default]
    Grpo,
    /// Mean over every token of the micro-batch.
    Bnpo,
    /// Sum over tokens divided by `B · max_completion_length` (Dr. GRPO).
    DrGrpo,
    /// Sum over tokens divided by the tokens of the whole accumulated batch (DAPO).
    Dapo,
}

impl LossType {
    /// The factor that turns this loss into the shared trainer's convention (the trainer divides
    /// each micro-batch loss by the `window` micro-batches of its update): 1, except `window` for
    /// `dapo`, which TRL does not divide by the accumulation steps.
    pub fn trainer_scale(self, window: usize) -> f64 {
        match self {
            LossType::Dapo => window as f64,
            _ => 1.0,
        }
    }
}

impl LossType {
    /// The factor that turns the loss of a data-parallel shard of `shard` rows (holding
    /// `shard_tokens` counted tokens) of a micro-batch of `rows` rows (`tokens` tokens) into a
    /// mean over the shard's rows, the form the shared loop averages across replicas (it weights
    /// each replica by `shard / rows`): `grpo` and `dr_grpo` already are (1); `bnpo` is a token
    /// mean of its shard, `(rows / shard) · shard_tokens / tokens`; `dapo` a sum over a fixed
    /// normaliser, `rows / shard`. With it, the replicas' mean is the micro-batch's loss.
    pub fn shard_factor(
        self,
        rows: usize,
        shard: usize,
        shard_tokens: usize,
        tokens: usize,
    ) -> f64 {
        let rows_share = rows as f64 / shard.max(1) as f64;
        match self {
            LossType::Grpo | LossType::DrGrpo => 1.0,
            LossType::Bnpo => rows_share * shard_tokens.max(1) as f64 / tokens.max(1) as f64,
            LossType::Dapo => rows_share,
        }
    }
}

/// Settings of the loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    /// The reduction.
    pub loss_type: LossType,
    /// Weight of the k3 KL to the reference (HRPO 0.005; TRL's default 0).
    pub beta: f64,
    /// Lower clip ε of the ratio.
    pub epsilon: f64,
    /// Upper clip ε (DAPO's clip-higher; TRL defaults it to `epsilon`).
    pub epsilon_high: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            loss_type: LossType::Grpo,
            beta: 0.005,
            epsilon: 0.2,
            epsilon_high: 0.2,
        }
    }
}

/// What one micro-batch's loss needs besides the log-probs. Shapes: `[n, c]` for `n` completions
/// of (padded) length `c`, `advantages` `[n, 1]`.
#[derive(Debug, Clone)]
pub struct LossInputs<B: Backend> {
    /// Log-probs of the policy that sampled (`None`: the current ones, detached — one iteration).
    pub old_logps: Option<Tensor<B, 2>>,
    /// Log-probs of the reference (needed when `beta != 0`).
    pub ref_logps: Option<Tensor<B, 2>>,
    /// `[n, 1]`.
    pub advantages: Tensor<B, 2>,
    /// 1 for completion tokens that count, 0 elsewhere.
    pub mask: Tensor<B, 2>,
    /// `dr_grpo`'s `max_completion_length`.
    pub max_completion_length: usize,
    /// `dapo`'s normaliser: completion tokens of the whole accumulated batch.
    pub batch_tokens: usize,
}

/// The loss and what TRL logs with it (host numbers).
#[derive(Debug, Clone)]
pub struct LossOutput<B: Backend> {
    /// Scalar `[1]`.
    pub loss: Tensor<B, 1>,
    /// Masked mean of the k3 KL (0 when `beta == 0`).
    pub kl: f64,
    /// Share of tokens whose ratio was clipped below (with a negative advantage).
    pub clip_low: f64,
    /// Share clipped above (positive advantage).
    pub clip_high: f64,
    /// Either.
    pub clip_region: f64,
}

/// The clamp applied to log-ratios before `exp`.
const LOG_RATIO_CLAMP: f64 = 20.0;

/// The GRPO loss of `logps` `[n, c]` (the current policy's, with their graph).
pub fn grpo_loss<B: Backend>(
    logps: Tensor<B, 2>,
    inputs: &LossInputs<B>,
    config: &LossConfig,
) -> LossOutput<B> {
    let [n, _] = logps.dims();
    let mask = inputs.mask.clone();
    let old = inputs
        .old_logps
        .clone()
        .unwrap_or_else(|| logps.clone().detach());
    let log_ratio = (logps.clone() - old).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP);
    let ratio = log_ratio.exp();
    let adv = inputs.advantages.clone();
    let clipped = ratio
        .clone()
        .clamp(1.0 - config.epsilon, 1.0 + config.epsilon_high);
    let term1 = ratio.clone() * adv.clone();
    let term2 = clipped * adv.clone();
    let mut per_token = term1.clone().min_pair(term2).neg();
    let mut kl = 0.0;
    if config.beta != 0.0 {
        let reference = inputs
            .ref_logps
            .clone()
            .expect("ref_logps are required when beta != 0");
        let d = (reference - logps).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP);
        let per_token_kl = d.clone().exp() - d - 1.0;
        kl = masked_mean(per_token_kl.clone(), mask.clone());
        per_token = per_token + per_token_kl * config.beta;
    }
    let masked = per_token * mask.clone();
    let loss = match config.loss_type {
        LossType::Grpo => (masked.sum_dim(1) / mask.clone().sum_dim(1).clamp_min(1.0))
            .mean()
            .reshape([1]),
        LossType::Bnpo => masked.sum() / mask.clone().sum().clamp_min(1.0),
        LossType::DrGrpo => masked.sum() / (n * inputs.max_completion_length.max(1)) as f64,
        LossType::Dapo => masked.sum() / inputs.batch_tokens.max(1) as f64,
    };
    let ratio = ratio.detach();
    let low = ratio
        .clone()
        .lower_elem(1.0 - config.epsilon)
        .bool_and(adv.clone().lower_elem(0.0).expand(ratio.dims()));
    let high = ratio
        .greater_elem(1.0 + config.epsilon_high)
        .bool_and(adv.greater_elem(0.0).expand(low.dims()));
    let region = low.clone().bool_or(high.clone());
    LossOutput {
        loss,
        kl,
        clip_low: masked_mean(low.float(), mask.clone()),
        clip_high: masked_mean(high.float(), mask.clone()),
        clip_region: masked_mean(region.float(), mask),
    }
}

/// `Σ x · mask / Σ mask` on the host (0 for an empty mask).
fn masked_mean<B: Backend>(x: Tensor<B, 2>, mask: Tensor<B, 2>) -> f64 {
    let total: f64 = mask.clone().sum().into_scalar().elem();
    if total == 0.0 {
        return 0.0;
    }
    let s: f64 = (x.detach() * mask).sum().into_scalar().elem();
    s / total
}
