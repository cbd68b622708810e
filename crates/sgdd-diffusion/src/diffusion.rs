//! The forward (masking) process and the loss: each maskable token is replaced by `<mask>` with
//! probability `γ(t)` ([`MaskSchedule`]); cross-entropy on masked positions, or MDLM's weighted
//! bound; classifier-free-guidance dropout of the semantic vector per sample.

use std::ops::Range;
use std::sync::Arc;

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use latent_core::model::to_f32;
use latent_core::train::Shard;
use latent_datasets::rng::SplitMix64;
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
    /// The padding id (targets equal to it are pads: the loss learns them, the non-pad masked CE
    /// leaves them out).
    pub pad: u32,
    /// Width of a semantic vector.
    pub cond_dim: usize,
    /// Seed of this micro-batch's masks, times and guidance dropout (a function of the run seed,
    /// epoch and batch index, so a resumed run draws the same). Row `r` draws from
    /// `(seed, first_row + r)` alone ([`row_rng`]).
    pub seed: u64,
    /// Index of this batch's first row in the micro-batch it was cut from (0 for a whole one), so
    /// that a piece of a micro-batch ([`SgddBatch::rows`]) draws exactly what its rows draw there.
    pub first_row: usize,
    /// The micro-batch a data-parallel shard was cut from ([`Shard::shard`]; `None` otherwise):
    /// the shard's loss divides by the whole micro-batch's counts (masked, non-pad masked and
    /// maskable positions) times the shard's share of its rows, so that the row-weighted mean of
    /// the shards' losses is exactly the whole micro-batch's loss.
    pub whole: Option<Arc<SgddBatch>>,
}

impl SgddBatch {
    /// The rows `range` as a batch of their own, drawing the same corruption as they do in `self`.
    pub fn rows(&self, range: Range<usize>) -> SgddBatch {
        let (l, c) = (self.len, self.cond_dim);
        SgddBatch {
            batch: range.len(),
            len: l,
            targets: self.targets[range.start * l..range.end * l].to_vec(),
            maskable: self.maskable[range.start * l..range.end * l].to_vec(),
            cond: self.cond[range.start * c..range.end * c].to_vec(),
            cond_dim: c,
            pad: self.pad,
            seed: self.seed,
            first_row: self.first_row + range.start,
            whole: None,
        }
    }
}

/// A data-parallel shard: the rows of `range` ([`SgddBatch::rows`], the same draws as in the whole
/// micro-batch), holding the whole micro-batch for the loss's normalisers; `device` is unused
/// (a batch lives on the host until the loss uploads it).
impl<B: Backend> Shard<B> for SgddBatch {
    fn units(&self) -> usize {
        self.batch
    }

    fn shard(&self, range: Range<usize>, _device: &B::Device) -> latent_core::Result<Self> {
        if range.start >= range.end || range.end > self.batch {
            return Err(latent_core::CoreError::Shape(format!(
                "shard rows {range:?} of an SGDD batch of {} rows",
                self.batch
            )));
        }
        let mut piece = self.rows(range);
        piece.whole = Some(Arc::new(self.clone()));
        Ok(piece)
    }
}

/// `x`, or 1 where it is 0 (a batch with nothing to average).
fn nonzero(x: f64) -> f64 {
    if x > 0.0 {
        x
    } else {
        1.0
    }
}

/// What the loss divides by: masked positions, masked positions with a non-pad target, maskable
/// positions (of the batch, or for a shard the whole micro-batch's times its share of the rows).
fn normalisers(
    batch: &SgddBatch,
    corruption: &Corruption,
    schedule: &MaskSchedule,
    mask_id: u32,
) -> (f64, f64, f64) {
    let count = |b: &SgddBatch, c: &Corruption| {
        let masked = c.masked.iter().filter(|&&m| m).count();
        let nonpad = (0..b.batch * b.len)
            .filter(|&i| c.masked[i] && b.targets[i] != b.pad)
            .count();
        let maskable = b.maskable.iter().filter(|&&m| m).count();
        (masked as f64, nonpad as f64, maskable as f64)
    };
    match &batch.whole {
        None => count(batch, corruption),
        Some(whole) => {
            // The masks do not depend on the guidance dropout probability.
            let (m, n, t) = count(whole, &corrupt(whole, schedule, mask_id, 0.0));
            let share = batch.batch as f64 / whole.batch as f64;
            (m * share, n * share, t * share)
        }
    }
}

/// The generator of row `row` of a micro-batch with corruption seed `seed`: its own stream, so a
/// row draws the same whichever piece of the micro-batch it is corrupted in.
pub fn row_rng(seed: u64, row: usize) -> StdRng {
    StdRng::seed_from_u64(SplitMix64::with_stream(seed, row as u64).next_u64())
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
    /// Rows where no maskable position was drawn, so one was masked anyway `[batch]`: the masked
    /// CE trains on it, the weighted bound counts nothing for the row (a row without a mask
    /// contributes 0 to the bound, and at small `t` the weight `w(t)` is about `1/t`).
    pub forced: Vec<bool>,
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
/// masked gets one random maskable position masked (flagged in [`Corruption::forced`]); each row is
/// unconditional with probability `cfg_prob` (independently per row). Each row draws from its own
/// generator ([`row_rng`] of the batch seed and its row index in the micro-batch).
pub fn corrupt(
    batch: &SgddBatch,
    schedule: &MaskSchedule,
    mask_id: u32,
    cfg_prob: f64,
) -> Corruption {
    let (b, l) = (batch.batch, batch.len);
    let mut noisy = batch.targets.clone();
    let mut masked = vec![false; b * l];
    let mut t = Vec::with_capacity(b);
    let mut uncond = Vec::with_capacity(b);
    let mut forced = Vec::with_capacity(b);
    for r in 0..b {
        let mut rng = row_rng(batch.seed, batch.first_row + r);
        let tr = schedule.time_of(rng.random_range(1..=schedule.steps));
        let p = schedule.mask_prob(tr);
        let row = r * l..(r + 1) * l;
        let candidates: Vec<usize> = row.filter(|&i| batch.maskable[i]).collect();
        for &i in &candidates {
            if rng.random::<f64>() < p {
                masked[i] = true;
            }
        }
        let none = !candidates.is_empty() && !candidates.iter().any(|&i| masked[i]);
        if none {
            masked[candidates[rng.random_range(0..candidates.len())]] = true;
        }
        forced.push(none);
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
        forced,
    }
}

/// The loss of a corrupted batch and its logged terms.
#[derive(Debug, Clone)]
pub struct LossOutput<B: Backend> {
    /// The training loss `[1]` (the chosen [`LossKind`]).
    pub loss: Tensor<B, 1>,
    /// Mean CE over masked positions.
    pub masked_ce: f64,
    /// Mean CE over masked positions whose target is not padding.
    pub masked_ce_nonpad: f64,
    /// Masked positions whose target is not padding.
    pub masked_nonpad_tokens: usize,
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

/// Runs `model` on the corrupted batch and returns both losses (the training one per `kind`): the
/// masked CE over every masked position (forced ones included), and the weighted bound, which
/// leaves out the rows whose only mask was forced ([`Corruption::forced`]). Also the masked CE over
/// non-pad targets.
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
    let (masked_norm, nonpad_norm, tokens_norm) =
        normalisers(batch, corruption, schedule, model.mask_id());
    let ce_w = vec![(1.0 / nonzero(masked_norm)) as f32; n];
    let bound_w: Vec<f32> = positions
        .iter()
        .map(|&i| {
            let r = i / l;
            if corruption.forced[r] {
                0.0
            } else {
                (schedule.weight(corruption.t[r]) / nonzero(tokens_norm)) as f32
            }
        })
        .collect();
    let nonpad: Vec<bool> = positions
        .iter()
        .map(|&i| batch.targets[i] != batch.pad)
        .collect();
    let masked_nonpad_tokens = nonpad.iter().filter(|&&k| k).count();
    let nonpad_w: Vec<f32> = nonpad
        .iter()
        .map(|&k| (f64::from(u8::from(k)) / nonzero(nonpad_norm)) as f32)
        .collect();
    let ce = (nll.clone() * float_tensor(ce_w, [n], &device)).sum();
    let ce_nonpad = (nll.clone() * float_tensor(nonpad_w, [n], &device)).sum();
    let bound = (nll * float_tensor(bound_w, [n], &device)).sum();
    let masked_ce: f64 = ce.clone().into_scalar().elem();
    let masked_ce_nonpad: f64 = ce_nonpad.into_scalar().elem();
    let bound_per_token: f64 = bound.clone().into_scalar().elem();
    let loss = match kind {
        LossKind::MaskedCe => ce,
        LossKind::WeightedBound => bound,
    };
    LossOutput {
        loss,
        masked_ce,
        masked_ce_nonpad,
        masked_nonpad_tokens,
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
            pad: 0,
            seed,
            first_row: 0,
            whole: None,
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

    /// Each row's masked fraction follows γ(t) = sin(πt/2) of the row's own t: the MaskGIT
    /// convention, not MDLM's mirror 1 − γ(t).
    #[test]
    fn corruption_masks_each_row_at_its_own_rate() {
        let s = MaskSchedule::default();
        let (rows, len) = (64, 201);
        let mut errors = Vec::new();
        for seed in 0..5 {
            let b = SgddBatch {
                batch: rows,
                len,
                targets: vec![7; rows * len],
                maskable: (0..rows * len).map(|i| i % len != 0).collect(),
                cond: vec![0.0; rows * 4],
                cond_dim: 4,
                pad: 0,
                seed,
                first_row: 0,
                whole: None,
            };
            let c = corrupt(&b, &s, 1, 0.0);
            for r in 0..rows {
                let masked = c.masked[r * len..(r + 1) * len]
                    .iter()
                    .filter(|&&m| m)
                    .count();
                let fraction = masked as f64 / (len - 1) as f64;
                errors.push(fraction - s.mask_prob(c.t[r]));
            }
        }
        let mean_abs = errors.iter().map(|e| e.abs()).sum::<f64>() / errors.len() as f64;
        let bias = errors.iter().sum::<f64>() / errors.len() as f64;
        assert!(mean_abs < 0.05, "mean |fraction − γ(t)| = {mean_abs}");
        assert!(bias.abs() < 0.01, "mean fraction − γ(t) = {bias}");
    }

    /// A one-layer decoder of width 16 over a vocabulary of 20, `max_len` 10.
    fn tiny_decoder<B: burn::tensor::backend::Backend>(device: &B::Device) -> SgddModel<B> {
        let config = crate::decoder::DecoderConfig {
            layers: 1,
            hidden: 16,
            heads: 2,
            ffn: 32,
            max_len: 10,
            cond_tokens: 1,
            init_std: 0.3,
            ..Default::default()
        };
        SgddModel::new(&config, 20, 4, 1, device)
    }

    /// The weighted bound against a direct computation from the model's logits: rows whose only
    /// mask was forced count nothing (at small t their weight is about 1/t), the masked CE counts
    /// every masked position, the non-pad CE only masked positions whose target is not a pad.
    #[test]
    fn bound_leaves_out_forced_masks_and_nonpad_ce_leaves_out_pads() {
        let device = Default::default();
        let model = tiny_decoder::<latent_core::CpuBackend>(&device);
        let schedule = MaskSchedule::default();
        // Row r: <s> (2), then 2 + r % 6 content tokens, then pads (0).
        let mut b = batch(0);
        b.targets = (0..640)
            .map(|i| {
                let (r, p) = (i / 10, i % 10);
                match p {
                    0 => 2,
                    _ if p <= 2 + r % 6 => 5 + ((i * 7) % 13) as u32,
                    _ => 0,
                }
            })
            .collect();
        b.cond = (0..64 * 4).map(|i| (i as f32 * 0.3).sin()).collect();
        // A seed whose draw forces a mask in some row.
        let (seed, c) = (0..50)
            .map(|k| {
                b.seed = k;
                (k, corrupt(&b, &schedule, 1, 0.1))
            })
            .find(|(_, c)| c.forced.iter().any(|&f| f))
            .expect("no forced row in 50 draws");
        b.seed = seed;
        for r in 0..64 {
            let masked = c.masked[r * 10..(r + 1) * 10]
                .iter()
                .filter(|&&m| m)
                .count();
            assert!(
                !c.forced[r] || masked == 1,
                "forced row {r} has {masked} masks"
            );
        }
        let out = diffusion_loss(&model, &b, &c, &schedule, LossKind::WeightedBound);
        let logits = model.forward(
            ids_tensor(&c.noisy, 64, 10, &device),
            float_tensor(c.t.iter().map(|&t| t as f32).collect(), [64], &device),
            float_tensor(b.cond.clone(), [64, 4], &device),
            float_tensor(
                c.uncond.iter().map(|&u| f32::from(u)).collect(),
                [64],
                &device,
            ),
        );
        let logp: Vec<f32> = log_softmax(logits, 2).into_data().to_vec().unwrap();
        let nll = |i: usize| -(logp[i * 20 + b.targets[i] as usize] as f64);
        let tokens = b.maskable.iter().filter(|&&m| m).count() as f64;
        let masked: Vec<usize> = (0..640).filter(|&i| c.masked[i]).collect();
        let bound: f64 = masked
            .iter()
            .filter(|&&i| !c.forced[i / 10])
            .map(|&i| schedule.weight(c.t[i / 10]) * nll(i))
            .sum::<f64>()
            / tokens;
        let forced_part: f64 = masked
            .iter()
            .filter(|&&i| c.forced[i / 10])
            .map(|&i| schedule.weight(c.t[i / 10]) * nll(i))
            .sum::<f64>()
            / tokens;
        assert!(
            (out.bound_per_token - bound).abs() < 1e-4 * bound,
            "bound {} vs {bound}",
            out.bound_per_token
        );
        // The forced masks would change the bound visibly: the check can tell.
        assert!(
            forced_part > 1e-2 * bound,
            "forced part {forced_part} of {bound}"
        );
        let ce = masked.iter().map(|&i| nll(i)).sum::<f64>() / masked.len() as f64;
        assert!(
            (out.masked_ce - ce).abs() < 1e-4,
            "{} vs {ce}",
            out.masked_ce
        );
        let nonpad: Vec<usize> = masked
            .iter()
            .copied()
            .filter(|&i| b.targets[i] != 0)
            .collect();
        assert!(nonpad.len() < masked.len() && !nonpad.is_empty());
        assert_eq!(out.masked_nonpad_tokens, nonpad.len());
        let ce_nonpad = nonpad.iter().map(|&i| nll(i)).sum::<f64>() / nonpad.len() as f64;
        assert!(
            (out.masked_ce_nonpad - ce_nonpad).abs() < 1e-4,
            "{} vs {ce_nonpad}",
            out.masked_ce_nonpad
        );
        // The training loss is the bound here.
        let loss: f64 = out.loss.into_scalar().elem();
        assert!((loss - out.bound_per_token).abs() < 1e-6);
    }

    /// Each row draws from (seed, its row index in the micro-batch) alone: any piece of a
    /// micro-batch draws exactly what its rows draw in the whole one (data-parallel shards).
    #[test]
    fn a_piece_of_a_batch_draws_what_its_rows_draw_in_the_whole() {
        let s = MaskSchedule::default();
        let whole = batch(11);
        let all = corrupt(&whole, &s, 1, 0.5);
        for range in [0..64, 0..1, 10..30, 63..64] {
            let piece = whole.rows(range.clone());
            assert_eq!(piece.first_row, range.start);
            let c = corrupt(&piece, &s, 1, 0.5);
            let cells = range.start * 10..range.end * 10;
            assert_eq!(c.noisy, all.noisy[cells.clone()], "{range:?}");
            assert_eq!(c.masked, all.masked[cells], "{range:?}");
            assert_eq!(c.t, all.t[range.clone()], "{range:?}");
            assert_eq!(c.uncond, all.uncond[range.clone()], "{range:?}");
            assert_eq!(c.forced, all.forced[range.clone()], "{range:?}");
        }
        // Rows do not share a stream: their times differ.
        let distinct: std::collections::BTreeSet<u64> = all.t.iter().map(|t| t.to_bits()).collect();
        assert!(
            distinct.len() > 40,
            "{} distinct times in 64 rows",
            distinct.len()
        );
    }

    /// Data-parallel shards: the shards' losses weighted by their share of the rows add up to the
    /// whole micro-batch's loss (masked CE, non-pad CE, bound), although the shards hold different
    /// numbers of masked tokens.
    #[test]
    fn shard_losses_weighted_by_rows_add_up_to_the_whole_batch() {
        use latent_core::CpuBackend;
        type B = CpuBackend;
        let device = Default::default();
        let model = tiny_decoder::<B>(&device);
        let schedule = MaskSchedule::default();
        let mut whole = batch(5);
        whole.targets = (0..640)
            .map(|i| if i % 10 > 6 { 0 } else { 5 + (i % 9) as u32 })
            .collect();
        whole.cond = (0..64 * 4).map(|i| (i as f32 * 0.7).cos()).collect();
        let loss = |b: &SgddBatch| {
            let c = corrupt(b, &schedule, 1, 0.1);
            let out = diffusion_loss(&model, b, &c, &schedule, LossKind::MaskedCe);
            [out.masked_ce, out.masked_ce_nonpad, out.bound_per_token]
        };
        let want = loss(&whole);
        let mut sum = [0.0; 3];
        let mut counts = Vec::new();
        for range in [0..21, 21..43, 43..64] {
            let piece = <SgddBatch as Shard<B>>::shard(&whole, range.clone(), &device).unwrap();
            counts.push(
                corrupt(&piece, &schedule, 1, 0.1)
                    .masked
                    .iter()
                    .filter(|&&m| m)
                    .count(),
            );
            let share = range.len() as f64 / 64.0;
            for (s, v) in sum.iter_mut().zip(loss(&piece)) {
                *s += share * v;
            }
        }
        for k in 0..3 {
            assert!(
                (sum[k] - want[k]).abs() < 1e-5,
                "term {k}: {} vs {}",
                sum[k],
                want[k]
            );
        }
        // The shards' masked counts are not in proportion to their rows: plain per-shard means
        // would not add up.
        assert!(counts[0] * 22 != counts[1] * 21, "{counts:?}");
    }
}
