//! The forward (masking) process and the loss: each maskable token is replaced by `<mask>` with
//! probability `γ(t)` ([`MaskSchedule`]); cross-entropy on masked positions, or MDLM's weighted
//! bound; classifier-free-guidance dropout of the semantic vector per sample.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use latent_core::model::to_f32;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::decoder::SgddModel;
use crate::schedule::MaskSchedule;

/// One micro-batch on the host: clean target sequences, which positions may be masked, and the
/// semantic vector of each row.
#[derive(Debug, Clone, PartialEq)]
pub struct SgddBatch {
    /// Rows.
    pub batch: usize,
    /// Sequence length.
    pub len: usize,
    /// Clean token ids `[batch * len]`.
    pub targets: Vec<u32>,
    /// Whether each position may be masked `[batch * len]` (the start token never is).
    pub maskable: Vec<bool>,
    /// Semantic vectors `[batch * cond_dim]`.
    pub cond: Vec<f32>,
    /// Width of a semantic vector.
    pub cond_dim: usize,
    /// Seed of this batch's masks, times and guidance dropout (a function of the run seed, epoch
    /// and batch index, so a resumed run draws the same).
    pub seed: u64,
}

/// What the forward process drew for a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Corruption {
    /// Inputs with `<mask>` at masked positions `[batch * len]`.
    pub noisy: Vec<u32>,
    /// Masked positions `[batch * len]`.
    pub masked: Vec<bool>,
    /// Diffusion time of each row `[batch]`.
    pub t: Vec<f64>,
    /// Rows whose semantic vector is replaced by the null vector `[batch]`.
    pub uncond: Vec<bool>,
}

/// Which loss trains the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Mean cross-entropy over masked positions (MaskGIT).
    MaskedCe,
    /// MDLM's weighted bound: `Σ_masked w(t) · CE` per token.
    WeightedBound,
}

/// Draws `t`, masks and guidance dropout for `batch`. Each row gets `t = k/steps`, `k` uniform in
/// `1..=steps`; each maskable position is masked with probability `γ(t)`; a row where nothing was
/// masked gets one random maskable position masked; each row is unconditional with probability
/// `cfg_prob` (independently per row).
pub fn corrupt(
    batch: &SgddBatch,
    schedule: &MaskSchedule,
    mask_id: u32,
    cfg_prob: f64,
) -> Corruption {
    let mut rng = StdRng::seed_from_u64(batch.seed);
    let (b, l) = (batch.batch, batch.len);
    let mut noisy = batch.targets.clone();
    let mut masked = vec![false; b * l];
    let mut t = Vec::with_capacity(b);
    let mut uncond = Vec::with_capacity(b);
    for r in 0..b {
        let tr = schedule.time_of(rng.random_range(1..=schedule.steps));
        let p = schedule.mask_prob(tr);
        let row = r * l..(r + 1) * l;
        let candidates: Vec<usize> = row.filter(|&i| batch.maskable[i]).collect();
        for &i in &candidates {
            if rng.random::<f64>() < p {
                masked[i] = true;
            }
        }
        if !candidates.is_empty() && !candidates.iter().any(|&i| masked[i]) {
            masked[candidates[rng.random_range(0..candidates.len())]] = true;
        }
        t.push(tr);
        uncond.push(rng.random::<f64>() < cfg_prob);
    }
    for (token, &m) in noisy.iter_mut().zip(&masked) {
        if m {
            *token = mask_id;
        }
    }
    Corruption {
        noisy,
        masked,
        t,
        uncond,
    }
}

/// The loss of a corrupted batch and its logged terms.
#[derive(Debug, Clone)]
pub struct LossOutput<B: Backend> {
    /// The training loss `[1]` (the chosen [`LossKind`]).
    pub loss: Tensor<B, 1>,
    /// Mean CE over masked positions.
    pub masked_ce: f64,
    /// Weighted bound per maskable token (its `exp` is the perplexity bound).
    pub bound_per_token: f64,
    /// Masked positions in the batch.
    pub masked_tokens: usize,
    /// Maskable positions in the batch.
    pub tokens: usize,
}

/// Int `[batch, len]` tensor of host ids.
pub fn ids_tensor<B: Backend>(
    ids: &[u32],
    batch: usize,
    len: usize,
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    let v: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(v, [batch, len]), device)
}

/// Float tensor of host values with `shape`.
pub fn float_tensor<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Runs `model` on the corrupted batch and returns both losses (the training one per `kind`).
pub fn diffusion_loss<B: Backend>(
    model: &SgddModel<B>,
    batch: &SgddBatch,
    corruption: &Corruption,
    schedule: &MaskSchedule,
    kind: LossKind,
) -> LossOutput<B> {
    let device = model.embed.weight.device();
    let (b, l) = (batch.batch, batch.len);
    // Only masked positions enter the loss: the head runs on them alone.
    let positions: Vec<usize> = (0..b * l).filter(|&i| corruption.masked[i]).collect();
    let n = positions.len();
    let hidden = model.hidden_at(
        ids_tensor(&corruption.noisy, b, l, &device),
        float_tensor(
            corruption.t.iter().map(|&t| t as f32).collect(),
            [b],
            &device,
        ),
        float_tensor(batch.cond.clone(), [b, batch.cond_dim], &device),
        float_tensor(
            corruption.uncond.iter().map(|&u| f32::from(u)).collect(),
            [b],
            &device,
        ),
        &positions,
    );
    let targets: Vec<u32> = positions.iter().map(|&i| batch.targets[i]).collect();
    let targets = ids_tensor(&targets, n, 1, &device);
    // The log-softmax in f32 whatever the compute dtype.
    let nll = log_softmax(to_f32(model.head(hidden)), 1)
        .gather(1, targets)
        .reshape([n])
        .neg();
    let masked_tokens = n;
    let tokens = batch.maskable.iter().filter(|&&m| m).count();
    let ce_w = vec![1.0 / masked_tokens.max(1) as f32; n];
    let bound_w: Vec<f32> = positions
        .iter()
        .map(|&i| (schedule.weight(corruption.t[i / l]) / tokens.max(1) as f64) as f32)
        .collect();
    let ce = (nll.clone() * float_tensor(ce_w, [n], &device)).sum();
    let bound = (nll * float_tensor(bound_w, [n], &device)).sum();
    let masked_ce: f64 = ce.clone().into_scalar().elem();
    let bound_per_token: f64 = bound.clone().into_scalar().elem();
    let loss = match kind {
        LossKind::MaskedCe => ce,
        LossKind::WeightedBound => bound,
    };
    LossOutput {
        loss,
        masked_ce,
        bound_per_token,
        masked_tokens,
        tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(seed: u64) -> SgddBatch {
        SgddBatch {
            batch: 64,
            len: 10,
            targets: (0..640).map(|i| 5 + (i % 7) as u32).collect(),
            maskable: (0..640).map(|i| i % 10 != 0).collect(),
            cond: vec![0.0; 64 * 4],
            cond_dim: 4,
            seed,
        }
    }

    #[test]
    fn corruption_respects_maskable_and_is_seeded() {
        let s = MaskSchedule::default();
        let b = batch(3);
        let c = corrupt(&b, &s, 1, 0.1);
        assert_eq!(c, corrupt(&b, &s, 1, 0.1));
        assert_ne!(c.noisy, corrupt(&batch(4), &s, 1, 0.1).noisy);
        for i in 0..640 {
            assert!(!c.masked[i] || b.maskable[i], "start token masked at {i}");
            assert_eq!(c.noisy[i] == 1, c.masked[i]);
        }
        for r in 0..64 {
            assert!(
                c.masked[r * 10..(r + 1) * 10].iter().any(|&m| m),
                "row {r} has no mask"
            );
        }
        // Per-sample guidance dropout: some rows, not all, over many batches (p = 0.1).
        let drops: usize = (0..50)
            .map(|k| {
                corrupt(&batch(k), &s, 1, 0.1)
                    .uncond
                    .iter()
                    .filter(|&&u| u)
                    .count()
            })
            .sum();
        let rate = drops as f64 / (50.0 * 64.0);
        assert!((rate - 0.1).abs() < 0.02, "{rate}");
        let mixed = (0..50).any(|k| {
            let u = corrupt(&batch(k), &s, 1, 0.1).uncond;
            u.iter().any(|&x| x) && !u.iter().all(|&x| x)
        });
        assert!(mixed, "dropout must be per sample, not per batch");
    }
}
