//! MaskGIT decoding with classifier-free guidance on logits, batched, and the optional
//! re-embed-and-correct rounds.
//!
//! Start from `<mask>` at every position to generate. At step `s = 0..T−1` each row runs at the
//! time of its actual masked fraction, `γ⁻¹(masked / (len − 1))` ([`row_times`]; `1 − s/T` where
//! the cosine schedule is followed exactly); every masked position gets a token (argmax, or a
//! Gumbel-max sample at `temperature`; never the start or unknown token, padding only after an end
//! token); its confidence is the guided log-probability of that token plus `τ·(1 − (s+1)/T)`
//! Gumbel noise; the `floor(N·cos(π/2·(s+1)/T))` lowest-confidence new tokens are masked again (at
//! least one token is committed per step), committed tokens are never re-masked, and the last step
//! fills everything. Guidance: `l = l_u + (w + 1)(l_c − l_u)` on
//! logits, the conditional and unconditional passes run as one batch of `2·batch`.

use std::ops::Range;

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::decoder::{mask_logit, SgddModel};
use crate::diffusion::{float_tensor, ids_tensor};
use crate::encoder::SpecialTokens;
use crate::schedule::MaskSchedule;

/// Decoding settings (the `decode:` section of a run config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeConfig {
    /// MaskGIT steps.
    pub steps: usize,
    /// Guidance scale `w` (0: conditional logits only, one pass per step).
    pub cfg_scale: f64,
    /// Token choice: 0 = argmax, otherwise a sample at this temperature.
    pub temperature: f64,
    /// Gumbel noise scale τ on the confidences (annealed by `1 − (s+1)/T`); MaskGIT uses 4.5, 0 is greedy.
    pub gumbel_tau: f64,
    /// Seed of the sampling noise.
    pub seed: u64,
    /// Re-embed-and-correct rounds after decoding (0 = off).
    pub correct_rounds: usize,
    /// Fraction of generated tokens re-masked per correction round.
    pub correct_fraction: f64,
    /// MaskGIT steps of a correction round.
    pub correct_steps: usize,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        Self {
            steps: 16,
            cfg_scale: 2.0,
            temperature: 0.0,
            gumbel_tau: 0.0,
            seed: 0,
            correct_rounds: 0,
            correct_fraction: 0.2,
            correct_steps: 4,
        }
    }
}

/// Guided logits. Shapes: `tokens` `[batch, len]`, `t` `[batch]`, `cond` `[batch, cond_dim]` →
/// `[batch, len, vocab]`: `l_u + (w + 1)(l_c − l_u)`, or `l_c` when `w = 0`.
pub fn guided_logits<B: Backend>(
    model: &SgddModel<B>,
    tokens: Tensor<B, 2, Int>,
    t: Tensor<B, 1>,
    cond: Tensor<B, 2>,
    cfg_scale: f64,
) -> Tensor<B, 3> {
    if cfg_scale == 0.0 {
        let unguided = conditional_flags(&tokens);
        return model.forward(tokens, t, cond, unguided);
    }
    let (tokens, t, cond, flags) = with_null_copy(tokens, t, cond);
    apply_guidance(model.forward(tokens, t, cond, flags), cfg_scale)
}

/// Guided logits at `positions` (flat indices into `batch * len`) only: `[positions.len(), vocab]`.
/// The same values as [`guided_logits`] at those positions, without the head's cost elsewhere.
pub fn guided_logits_at<B: Backend>(
    model: &SgddModel<B>,
    tokens: Tensor<B, 2, Int>,
    t: Tensor<B, 1>,
    cond: Tensor<B, 2>,
    cfg_scale: f64,
    positions: &[usize],
) -> Tensor<B, 2> {
    GuidedRows::new(model, tokens, t, cond, cfg_scale, positions).logits(0..positions.len())
}

/// The decoder's final hidden states at some positions, conditional and (with guidance)
/// unconditional, from which guided logits are made a range of rows at a time: the decoder runs
/// once, the `[rows, vocab]` head output is built in pieces.
pub struct GuidedRows<'a, B: Backend> {
    model: &'a SgddModel<B>,
    /// `[n, hidden]`, or with guidance `[2n, hidden]`: conditional rows, then unconditional.
    hidden: Tensor<B, 2>,
    n: usize,
    cfg_scale: f64,
}

impl<'a, B: Backend> GuidedRows<'a, B> {
    /// Runs the decoder (one batch of `2 * batch` with guidance). Shapes as [`guided_logits`];
    /// `positions` are flat indices into `batch * len`.
    pub fn new(
        model: &'a SgddModel<B>,
        tokens: Tensor<B, 2, Int>,
        t: Tensor<B, 1>,
        cond: Tensor<B, 2>,
        cfg_scale: f64,
        positions: &[usize],
    ) -> Self {
        let n = positions.len();
        let hidden = if cfg_scale == 0.0 {
            let unguided = conditional_flags(&tokens);
            model.hidden_at(tokens, t, cond, unguided, positions)
        } else {
            let [b, len] = tokens.dims();
            let both: Vec<usize> = positions
                .iter()
                .copied()
                .chain(positions.iter().map(|&p| p + b * len))
                .collect();
            let (tokens, t, cond, flags) = with_null_copy(tokens, t, cond);
            model.hidden_at(tokens, t, cond, flags, &both)
        };
        Self {
            model,
            hidden,
            n,
            cfg_scale,
        }
    }

    /// Guided logits of the positions `rows` (indices into `positions`) → `[rows.len(), vocab]`.
    /// With guidance the conditional and unconditional rows go through the head as one matrix
    /// (at small batch the head is bound by reading its `[vocab, hidden]` weight).
    pub fn logits(&self, rows: Range<usize>) -> Tensor<B, 2> {
        let part = |start: usize| self.hidden.clone().narrow(0, start, rows.len());
        if self.cfg_scale == 0.0 {
            return self.model.head(part(rows.start));
        }
        let both = Tensor::cat(vec![part(rows.start), part(self.n + rows.start)], 0);
        apply_guidance(self.model.head(both), self.cfg_scale)
    }
}

/// `uncond` flags `[batch]` of a purely conditional batch (all 0).
fn conditional_flags<B: Backend>(tokens: &Tensor<B, 2, Int>) -> Tensor<B, 1> {
    Tensor::zeros([tokens.dims()[0]], &tokens.device())
}

/// The batch twice along dim 0, the second copy flagged to use the null vector: tokens
/// `[2 * batch, len]`, `t` `[2 * batch]`, `cond` `[2 * batch, cond_dim]`, flags `[2 * batch]`.
#[allow(clippy::type_complexity)]
fn with_null_copy<B: Backend>(
    tokens: Tensor<B, 2, Int>,
    t: Tensor<B, 1>,
    cond: Tensor<B, 2>,
) -> (Tensor<B, 2, Int>, Tensor<B, 1>, Tensor<B, 2>, Tensor<B, 1>) {
    let flags = Tensor::cat(
        vec![
            conditional_flags(&tokens),
            conditional_flags(&tokens).ones_like(),
        ],
        0,
    );
    (
        Tensor::cat(vec![tokens.clone(), tokens], 0),
        Tensor::cat(vec![t.clone(), t], 0),
        Tensor::cat(vec![cond.clone(), cond], 0),
        flags,
    )
}

/// CFG on logits whose first half along dim 0 is conditional and second half unconditional →
/// `l_u + (w + 1)(l_c − l_u)`, half the rows.
fn apply_guidance<B: Backend, const D: usize>(
    logits: Tensor<B, D>,
    cfg_scale: f64,
) -> Tensor<B, D> {
    let n = logits.dims()[0] / 2;
    let cond_logits = logits.clone().narrow(0, 0, n);
    let uncond_logits = logits.narrow(0, n, n);
    uncond_logits.clone() + (cond_logits - uncond_logits) * (cfg_scale + 1.0)
}

/// Positions whose vocabulary head is computed at a time while decoding. Each `[rows, vocab]`
/// buffer (`2 * rows` with guidance) stays near 16 MB at a 30k vocabulary, below glibc's 32 MB
/// mmap ceiling, so it is reused rather than mapped and page-faulted afresh (at batch 32 with
/// guidance the whole-batch head spent a fifth of the decoding time in page faults).
const HEAD_ROWS: usize = 64;

/// Per row of `logits` `[rows, vocab]`: the chosen token (argmax, or a Gumbel-max sample at
/// `temperature` with noise from `rng`, so sampling is reproducible from the decode seed) and its
/// log-probability under the logits.
fn choose<B: Backend>(
    logits: Tensor<B, 2>,
    temperature: f64,
    rng: &mut StdRng,
) -> (Vec<i64>, Vec<f32>) {
    let [rows, vocab] = logits.dims();
    let choice = if temperature > 0.0 {
        let noise: Vec<f32> = (0..rows * vocab).map(|_| gumbel(rng) as f32).collect();
        let g = Tensor::<B, 2>::from_data(TensorData::new(noise, [rows, vocab]), &logits.device());
        (logits.clone() / temperature + g).argmax(1)
    } else {
        logits.clone().argmax(1)
    };
    let conf = log_softmax(logits, 1)
        .gather(1, choice.clone())
        .reshape([rows]);
    (
        choice.into_data().convert::<i64>().into_vec().expect("ids"),
        conf.into_data().convert::<f32>().into_vec().expect("f32"),
    )
}

fn gumbel(rng: &mut StdRng) -> f64 {
    let u: f64 = rng.random::<f64>().clamp(1e-12, 1.0 - 1e-12);
    -(-u.ln()).ln()
}

/// The time of each row of `tokens` `[batch * len]` → `[batch]`: `γ⁻¹` of its masked fraction
/// among the `len − 1` positions after the start token (the positions training masks), so the
/// model is told the masking rate its input actually has.
pub fn row_times(tokens: &[u32], len: usize, mask_id: u32, schedule: &MaskSchedule) -> Vec<f32> {
    let maskable = len.saturating_sub(1).max(1) as f64;
    tokens
        .chunks(len)
        .map(|row| {
            let masked = row.iter().filter(|&&x| x == mask_id).count();
            schedule.time_of_fraction(masked as f64 / maskable) as f32
        })
        .collect()
}

/// Whether decoding may put padding at each position of `tokens` `[batch * len]`: only after an
/// end token already in the same row (training puts pads only after `</s>`).
fn pad_allowed(tokens: &[u32], len: usize, eos: u32) -> Vec<bool> {
    tokens
        .chunks(len)
        .flat_map(|row| {
            let end = row.iter().skip(1).position(|&x| x == eos).map(|p| p + 1);
            (0..row.len()).map(move |p| end.is_some_and(|e| p > e))
        })
        .collect()
}

/// Forbids, in the logits `[rows, vocab]` of the flat positions `at`, what decoding never chooses:
/// the start and unknown tokens everywhere, padding where `pad_ok[position]` is false. Their logit
/// becomes the absorbing token's ([`mask_logit`]), so they get no probability and the others
/// renormalise among themselves. Returns `[rows, vocab]`.
fn restrict<B: Backend>(
    logits: Tensor<B, 2>,
    at: &[usize],
    pad_ok: &[bool],
    special: &SpecialTokens,
) -> Tensor<B, 2> {
    let [rows, _] = logits.dims();
    let device = logits.device();
    let dtype = logits.dtype();
    let low = mask_logit(dtype);
    let mut logits = logits;
    for id in std::iter::once(special.bos).chain(special.unk) {
        let id = id as usize;
        logits = logits.slice_assign(
            [0..rows, id..id + 1],
            Tensor::full([rows, 1], low, (&device, dtype)),
        );
    }
    // (A vocabulary whose end token is its pad token ends rows with it: nothing to forbid.)
    let forbid: Vec<bool> = at.iter().map(|&p| !pad_ok[p]).collect();
    if special.pad != special.eos && forbid.contains(&true) {
        let pad = special.pad as usize;
        let forbid = Tensor::<B, 2, Bool>::from_data(TensorData::new(forbid, [rows, 1]), &device);
        let column = logits
            .clone()
            .slice([0..rows, pad..pad + 1])
            .mask_fill(forbid, low);
        logits = logits.slice_assign([0..rows, pad..pad + 1], column);
    }
    logits
}

/// One MaskGIT step as it ran, handed to the observer of [`maskgit_decode_observed`].
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeStep {
    /// The step `s` (0-based).
    pub step: usize,
    /// Ids at the input of the step `[batch * len]`.
    pub tokens: Vec<u32>,
    /// The time each row was given `[batch]` ([`row_times`] of `tokens`).
    pub t: Vec<f32>,
    /// The positions predicted: the input's masks, flat indices into `batch * len`.
    pub positions: Vec<usize>,
    /// The token chosen at each of `positions`.
    pub choice: Vec<u32>,
    /// Its guided log-probability (before any Gumbel noise) at each of `positions`.
    pub confidence: Vec<f32>,
    /// The positions this step committed; the rest of `positions` stay masked.
    pub committed: Vec<usize>,
}

/// Fills every `<mask>` of `init` (`[batch * len]` host ids, position 0 of each row the start
/// token) in `config.steps` MaskGIT steps conditioned on `cond` `[batch, cond_dim]`; other
/// positions are kept as given. Returns `[batch * len]` ids. See [`maskgit_decode_observed`].
#[allow(clippy::too_many_arguments)]
pub fn maskgit_decode<B: Backend>(
    model: &SgddModel<B>,
    cond: Tensor<B, 2>,
    init: &[u32],
    len: usize,
    special: &SpecialTokens,
    config: &DecodeConfig,
    schedule: &MaskSchedule,
    rng: &mut StdRng,
) -> Vec<u32> {
    maskgit_decode_observed(
        model,
        cond,
        init,
        len,
        special,
        config,
        schedule,
        rng,
        |_| {},
    )
}

/// [`maskgit_decode`], handing each step to `observe` after it ran. At step `s` of `T` each row
/// runs at the time of its actual masked fraction ([`row_times`]); every masked position gets a
/// token (never the start or unknown token, padding only after an end token already in the row;
/// argmax, or a Gumbel-max sample at `temperature`) with its guided log-probability as confidence
/// plus `τ·(1 − (s+1)/T)` Gumbel noise; of the `m` masks of a row holding `N` at the start, the
/// `min(floor(N·cos(π/2·(s+1)/T)), m − 1)` least confident stay masked (at least one token
/// committed per step); the last step fills everything. MaskGIT's other bound, at least one token
/// kept masked before the last step, never binds here: at the input of step `s` at most `N − s`
/// masks are left, so it matters only when `N ≥ s + 2`, and then `floor(N·cos(π/2·(s+1)/T)) ≥ 1`
/// for `s ≤ T − 2` (`cos(π x/2) ≥ 1 − x` and `(s + 2)(T − s − 1) ≥ T`). Committed tokens are never re-masked. Returns `[batch * len]` ids.
#[allow(clippy::too_many_arguments)]
pub fn maskgit_decode_observed<B: Backend>(
    model: &SgddModel<B>,
    cond: Tensor<B, 2>,
    init: &[u32],
    len: usize,
    special: &SpecialTokens,
    config: &DecodeConfig,
    schedule: &MaskSchedule,
    rng: &mut StdRng,
    mut observe: impl FnMut(&DecodeStep),
) -> Vec<u32> {
    let device = cond.device();
    let mask_id = model.mask_id();
    let b = init.len() / len;
    let mut tokens = init.to_vec();
    let totals: Vec<usize> = tokens
        .chunks(len)
        .map(|row| row.iter().filter(|&&x| x == mask_id).count())
        .collect();
    let steps = config.steps.max(1);
    for s in 0..steps {
        if !tokens.contains(&mask_id) {
            break;
        }
        let t = row_times(&tokens, len, mask_id, schedule);
        let positions: Vec<usize> = (0..b * len).filter(|&i| tokens[i] == mask_id).collect();
        let pad_ok = pad_allowed(&tokens, len, special.eos);
        let n = positions.len();
        let rows = GuidedRows::new(
            model,
            ids_tensor(&tokens, b, len, &device),
            float_tensor(t.clone(), [b], &device),
            cond.clone(),
            config.cfg_scale,
            &positions,
        );
        let (mut choice_at, mut conf_at) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for start in (0..n).step_by(HEAD_ROWS) {
            let end = (start + HEAD_ROWS).min(n);
            let logits = restrict(
                rows.logits(start..end),
                &positions[start..end],
                &pad_ok,
                special,
            );
            let (c, f) = choose(logits, config.temperature, rng);
            choice_at.extend(c.into_iter().map(|x| x as u32));
            conf_at.extend(f);
        }
        let (mut choice, mut conf) = (vec![0u32; b * len], vec![0f32; b * len]);
        for (k, &p) in positions.iter().enumerate() {
            choice[p] = choice_at[k];
            conf[p] = conf_at[k];
        }
        let before = tokens.clone();
        let mut committed = Vec::new();
        let noise = config.gumbel_tau * (1.0 - (s + 1) as f64 / steps as f64);
        for (r, &total) in totals.iter().enumerate() {
            let row = r * len..(r + 1) * len;
            let mut masked: Vec<(usize, f64)> = row
                .filter(|&i| tokens[i] == mask_id)
                .map(|i| {
                    (
                        i,
                        conf[i] as f64
                            + if noise > 0.0 {
                                noise * gumbel(rng)
                            } else {
                                0.0
                            },
                    )
                })
                .collect();
            if masked.is_empty() {
                continue;
            }
            let keep = if s + 1 >= steps {
                0
            } else {
                schedule.masked_after(s, steps, total).min(masked.len() - 1)
            };
            // Most confident first; the `keep` least confident stay masked.
            masked.sort_by(|a, c| c.1.total_cmp(&a.1));
            for &(i, _) in &masked[..masked.len() - keep] {
                tokens[i] = choice[i];
                committed.push(i);
            }
        }
        observe(&DecodeStep {
            step: s,
            tokens: before,
            t,
            positions,
            choice: choice_at,
            confidence: conf_at,
            committed,
        });
    }
    tokens
}

/// Guided log-probability of `ids` (one per row) under `logits` `[rows, vocab]` → `[rows]`.
fn log_prob_of<B: Backend>(logits: Tensor<B, 2>, ids: &[u32]) -> Vec<f32> {
    let [rows, _] = logits.dims();
    let ids = ids_tensor::<B>(ids, rows, 1, &logits.device());
    log_softmax(logits, 1)
        .gather(1, ids)
        .reshape([rows])
        .into_data()
        .convert::<f32>()
        .into_vec()
        .expect("f32")
}

/// Leave-group-out consistency of `tokens` `[batch * len]` (position 0 of each row the start
/// token) under `cond` `[batch, cond_dim]`: the positions after the start token are split into
/// `groups` strided groups (position `p` in group `(p − 1) mod groups`); each group in turn is
/// masked, the model runs at each row's resulting masked fraction ([`row_times`]), and each token
/// of the group is scored by its guided log-probability there. So every token is scored with
/// itself masked, the only case the loss trains, in `groups` decoder passes (`len − 1` groups is
/// exact leave-one-out). Returns `[batch * len]` scores, 0 at the start tokens.
pub fn consistency_scores<B: Backend>(
    model: &SgddModel<B>,
    cond: Tensor<B, 2>,
    tokens: &[u32],
    len: usize,
    groups: usize,
    cfg_scale: f64,
    schedule: &MaskSchedule,
) -> Vec<f32> {
    let device = cond.device();
    let mask_id = model.mask_id();
    let b = tokens.len() / len;
    let groups = groups.clamp(1, len.saturating_sub(1).max(1));
    let mut score = vec![0f32; b * len];
    for g in 0..groups {
        let positions: Vec<usize> = (0..b * len)
            .filter(|&i| i % len >= 1 && (i % len - 1) % groups == g)
            .collect();
        if positions.is_empty() {
            continue;
        }
        let mut input = tokens.to_vec();
        for &i in &positions {
            input[i] = mask_id;
        }
        let t = row_times(&input, len, mask_id, schedule);
        let rows = GuidedRows::new(
            model,
            ids_tensor(&input, b, len, &device),
            float_tensor(t, [b], &device),
            cond.clone(),
            cfg_scale,
            &positions,
        );
        let n = positions.len();
        for start in (0..n).step_by(HEAD_ROWS) {
            let at = &positions[start..(start + HEAD_ROWS).min(n)];
            let ids: Vec<u32> = at.iter().map(|&i| tokens[i]).collect();
            let lp = log_prob_of(rows.logits(start..start + at.len()), &ids);
            for (&i, v) in at.iter().zip(lp) {
                score[i] = v;
            }
        }
    }
    score
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// Decodes `cond` into `len`-token sequences from fully masked rows (position 0 is the start token
/// `special.bos`), then runs `config.correct_rounds` re-embed-and-correct rounds: score each
/// generated token with it masked ([`consistency_scores`], `ceil(1 / correct_fraction)` groups), re-mask the
/// `correct_fraction` least consistent ones, re-decode them ([`maskgit_decode`], which tells the
/// model the rows' actual masked fraction), re-encode the candidate with `embed` and keep it for
/// rows where its cosine to the target vector improves. `embed` maps token rows to semantic
/// vectors (the frozen encoder).
///
/// Returns the ids `[batch * len]`.
#[allow(clippy::too_many_arguments)]
pub fn generate<B: Backend>(
    model: &SgddModel<B>,
    cond: &[Vec<f32>],
    len: usize,
    special: &SpecialTokens,
    config: &DecodeConfig,
    schedule: &MaskSchedule,
    mut embed: impl FnMut(&[u32]) -> Vec<Vec<f32>>,
) -> Vec<u32> {
    let device = model.embed.weight.device();
    let b = cond.len();
    let c = model.cond_dim();
    let cond_t = float_tensor::<B, 2>(cond.iter().flatten().copied().collect(), [b, c], &device);
    let mask_id = model.mask_id();
    let mut init = vec![mask_id; b * len];
    for r in 0..b {
        init[r * len] = special.bos;
    }
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut tokens = maskgit_decode(
        model,
        cond_t.clone(),
        &init,
        len,
        special,
        config,
        schedule,
        &mut rng,
    );
    if config.correct_rounds == 0 {
        return tokens;
    }
    let mut best: Vec<f64> = embed(&tokens)
        .iter()
        .zip(cond)
        .map(|(e, z)| cosine(e, z))
        .collect();
    let ratio = config.correct_fraction.clamp(0.0, 1.0);
    let groups = if ratio > 0.0 {
        (1.0 / ratio).ceil() as usize
    } else {
        len.saturating_sub(1)
    };
    let correction = DecodeConfig {
        steps: config.correct_steps,
        ..config.clone()
    };
    for _ in 0..config.correct_rounds {
        let score = consistency_scores(
            model,
            cond_t.clone(),
            &tokens,
            len,
            groups,
            config.cfg_scale,
            schedule,
        );
        let mut candidate = tokens.clone();
        for r in 0..b {
            let mut pos: Vec<usize> = (r * len + 1..(r + 1) * len).collect();
            pos.sort_by(|&i, &j| score[i].total_cmp(&score[j]));
            let k = ((len - 1) as f64 * ratio).ceil() as usize;
            for &i in pos.iter().take(k.max(1)) {
                candidate[i] = mask_id;
            }
        }
        let candidate = maskgit_decode(
            model,
            cond_t.clone(),
            &candidate,
            len,
            special,
            &correction,
            schedule,
            &mut rng,
        );
        let cos: Vec<f64> = embed(&candidate)
            .iter()
            .zip(cond)
            .map(|(e, z)| cosine(e, z))
            .collect();
        for r in 0..b {
            if cos[r] > best[r] {
                best[r] = cos[r];
                tokens[r * len..(r + 1) * len].copy_from_slice(&candidate[r * len..(r + 1) * len]);
            }
        }
    }
    tokens
}
