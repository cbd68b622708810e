//! MaskGIT decoding with classifier-free guidance on logits, batched, and the optional
//! re-embed-and-correct rounds.
//!
//! Start from `<mask>` at every position to generate. At step `s = 0..T−1` the model runs at
//! `t_s = 1 − s/T` ([`MaskSchedule::decode_time`]); every masked position gets a token (argmax, or
//! a Gumbel-max sample at `temperature`); its confidence is the guided log-probability of that
//! token plus `τ·(1 − (s+1)/T)` Gumbel noise; the `floor(N·cos(π/2·(s+1)/T))` lowest-confidence new
//! tokens are masked again (at least one token is committed per step), committed tokens are never
//! re-masked, and the last step fills everything. Guidance: `l = l_u + (w + 1)(l_c − l_u)` on
//! logits, the conditional and unconditional passes run as one batch of `2·batch`.

use std::ops::Range;

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::decoder::SgddModel;
use crate::diffusion::{float_tensor, ids_tensor};
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

/// Fills every `<mask>` of `init` (`[batch * len]` host ids) in `config.steps` MaskGIT steps conditioned on
/// `cond` `[batch, cond_dim]`; other positions are kept as given. Returns `[batch * len]` ids.
pub fn maskgit_decode<B: Backend>(
    model: &SgddModel<B>,
    cond: Tensor<B, 2>,
    init: &[u32],
    len: usize,
    config: &DecodeConfig,
    schedule: &MaskSchedule,
    rng: &mut StdRng,
) -> Vec<u32> {
    let device = cond.device();
    let mask_id = model.mask_id();
    let b = init.len() / len;
    let mut tokens = init.to_vec();
    let totals: Vec<usize> = (0..b)
        .map(|r| {
            tokens[r * len..(r + 1) * len]
                .iter()
                .filter(|&&x| x == mask_id)
                .count()
        })
        .collect();
    let steps = config.steps.max(1);
    for s in 0..steps {
        if !tokens.contains(&mask_id) {
            break;
        }
        let t = schedule.decode_time(s, steps) as f32;
        let positions: Vec<usize> = (0..b * len).filter(|&i| tokens[i] == mask_id).collect();
        let n = positions.len();
        let rows = GuidedRows::new(
            model,
            ids_tensor(&tokens, b, len, &device),
            float_tensor(vec![t; b], [b], &device),
            cond.clone(),
            config.cfg_scale,
            &positions,
        );
        let (mut choice_at, mut conf_at) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for start in (0..n).step_by(HEAD_ROWS) {
            let logits = rows.logits(start..(start + HEAD_ROWS).min(n));
            let (c, f) = choose(logits, config.temperature, rng);
            choice_at.extend(c);
            conf_at.extend(f);
        }
        let (mut choice, mut conf) = (vec![0i64; b * len], vec![0f32; b * len]);
        for (k, &p) in positions.iter().enumerate() {
            choice[p] = choice_at[k];
            conf[p] = conf_at[k];
        }
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
            let keep = schedule.masked_after(s, steps, total).min(masked.len() - 1);
            masked.sort_by(|a, c| c.1.total_cmp(&a.1));
            for &(i, _) in &masked[..masked.len() - keep] {
                tokens[i] = choice[i] as u32;
            }
        }
    }
    tokens
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
/// `bos`), then runs `config.correct_rounds` re-embed-and-correct rounds: score each generated token
/// by its guided log-probability in context, re-mask the `correct_fraction` least consistent ones,
/// re-decode them, re-encode the candidate with `embed` and keep it for rows where its cosine to the
/// target vector improves. `embed` maps token rows to semantic vectors (the frozen encoder).
///
/// Returns the ids `[batch * len]`.
#[allow(clippy::too_many_arguments)]
pub fn generate<B: Backend>(
    model: &SgddModel<B>,
    cond: &[Vec<f32>],
    len: usize,
    bos: u32,
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
        init[r * len] = bos;
    }
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut tokens = maskgit_decode(
        model,
        cond_t.clone(),
        &init,
        len,
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
    let correction = DecodeConfig {
        steps: config.correct_steps,
        ..config.clone()
    };
    let t_correct = (ratio.asin() / std::f64::consts::FRAC_PI_2) as f32;
    for _ in 0..config.correct_rounds {
        let logits = guided_logits(
            model,
            ids_tensor(&tokens, b, len, &device),
            float_tensor(vec![t_correct; b], [b], &device),
            cond_t.clone(),
            config.cfg_scale,
        );
        let current = ids_tensor::<B>(&tokens, b, len, &device).reshape([b, len, 1]);
        let score: Vec<f32> = log_softmax(logits, 2)
            .gather(2, current)
            .reshape([b, len])
            .into_data()
            .convert::<f32>()
            .into_vec()
            .expect("f32");
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
