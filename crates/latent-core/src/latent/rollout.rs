//! HRPO rollouts on the decoding loop: G completions per prompt from one prefill, each position's
//! input mixed with a thinking state while the row "thinks".
//!
//! A row thinks while its decoded completion does not contain the answer delimiter (`####`). After
//! sampling `x_t` from the step that produced it, the input of `x_t`'s position is
//! `ThinkingResidual(E[x_t], h_t)` when "`####` not in decoded(completion up to and including x_t)",
//! with `h_t` from the distribution that sampled `x_t` ([`ThinkingSource::ProbabilityWeighted`]) or
//! the projection of the hidden state that produced it ([`ThinkingSource::Projection`]) — HRPO's
//! patched `_sample`. The prompt is never mixed, nor is a row's last token (it is never fed).
//!
//! The result is aligned with `prompt + completion` ids (prompts left-padded, completions
//! right-padded with the pad id): what the training forward needs to recompute the same inputs.

use burn::prelude::*;
use burn::tensor::DType;
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use super::thinking_lm::ThinkingLm;
use super::thinking_state::probability_weighted;
use crate::infer::decode::decode_ids;
use crate::infer::{
    decode, DecodeConfig, DecodePolicy, Next, NextInputs, SamplingConfig, StepView, Stepper,
    StopReason,
};
use crate::stop::StopFlag;
use crate::{CoreError, Result};

/// What to roll out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutConfig {
    /// Completions per prompt (GRPO's group size G).
    pub group_size: usize,
    /// Longest completion, EOS included.
    pub max_new_tokens: usize,
    /// Temperature / top-k / top-p and the seed (completion `r` of the call uses `seed + r`).
    pub sampling: SamplingConfig,
    /// A completion ends after one of these.
    pub eos_token_ids: Vec<u32>,
    /// Left-pads prompts and right-pads completions (HRPO: the EOS id).
    pub pad_token_id: u32,
    /// Thinking stops once the decoded completion contains this.
    pub answer_delimiter: String,
    /// Mix thinking states into the inputs (`false`: plain token rollouts, as GRPO).
    pub mix: bool,
    /// Ends the rollout with [`CoreError::StopRequested`] within one decoding step once raised.
    #[serde(skip)]
    pub stop: Option<StopFlag>,
}

/// Rollouts of a batch of prompts, host-side, aligned with `prompt + completion` ids.
///
/// Every per-position field is `[rows, width]` row-major (`thinking_states` `[rows, width,
/// hidden]`), `width = prompt_width + completion_width`; row `p·G + g` is completion `g` of prompt
/// `p`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rollouts {
    /// Completions (`prompts × group_size`).
    pub rows: usize,
    /// Width of the left-padded prompts.
    pub prompt_width: usize,
    /// Width of the right-padded completions (the longest completion).
    pub completion_width: usize,
    /// Model width.
    pub hidden: usize,
    /// Prompt + completion ids (pad id in padding).
    pub ids: Vec<u32>,
    /// 1 for real prompt tokens and completion tokens (through the first EOS), else 0.
    pub attention_mask: Vec<u8>,
    /// 1 for completion tokens up to and including the first EOS.
    pub completion_mask: Vec<u8>,
    /// Whether the position's input was mixed with its thinking state.
    pub thinking_mask: Vec<bool>,
    /// The thinking state of each mixed position (zeros elsewhere), f32.
    pub thinking_states: Vec<f32>,
    /// Mean over hidden dimensions of the gate `a` at mixed positions (1 elsewhere).
    pub gate_mean: Vec<f32>,
    /// Mean over hidden dimensions of `sqrt(1 − a² + 1e−8)`, the weight of the thinking state, at
    /// mixed positions (0 elsewhere).
    pub hidden_ratio: Vec<f32>,
    /// Each row's completion ids (an EOS that ended it last).
    pub completions: Vec<Vec<u32>>,
    /// Each completion decoded (special tokens skipped).
    pub texts: Vec<String>,
    /// Why each completion ended.
    pub stops: Vec<StopReason>,
}

impl Rollouts {
    /// `prompt_width + completion_width`.
    pub fn width(&self) -> usize {
        self.prompt_width + self.completion_width
    }

    /// The rows `rows` (in that order, repeats allowed), re-padded to their own longest prompt and
    /// completion: e.g. the groups dynamic sampling keeps, or one micro-batch.
    pub fn select_rows(&self, rows: &[usize]) -> Rollouts {
        let (w, h) = (self.width(), self.hidden);
        let prompt_len = |r: usize| -> usize {
            self.attention_mask[r * w..r * w + self.prompt_width]
                .iter()
                .map(|&m| usize::from(m))
                .sum()
        };
        let prompt_width = rows
            .iter()
            .map(|&r| prompt_len(r))
            .max()
            .unwrap_or(0)
            .max(1);
        let completion_width = rows
            .iter()
            .map(|&r| self.completions[r].len())
            .max()
            .unwrap_or(0);
        let skip = self.prompt_width - prompt_width;
        let width = prompt_width + completion_width;
        let mut out = Rollouts {
            rows: rows.len(),
            prompt_width,
            completion_width,
            hidden: h,
            thinking_states: Vec::with_capacity(rows.len() * width * h),
            ..Default::default()
        };
        for &r in rows {
            let cols = r * w + skip..r * w + skip + width;
            out.ids.extend_from_slice(&self.ids[cols.clone()]);
            out.attention_mask
                .extend_from_slice(&self.attention_mask[cols.clone()]);
            out.completion_mask
                .extend_from_slice(&self.completion_mask[cols.clone()]);
            out.thinking_mask
                .extend_from_slice(&self.thinking_mask[cols.clone()]);
            out.gate_mean
                .extend_from_slice(&self.gate_mean[cols.clone()]);
            out.hidden_ratio
                .extend_from_slice(&self.hidden_ratio[cols.clone()]);
            out.thinking_states
                .extend_from_slice(&self.thinking_states[cols.start * h..cols.end * h]);
            out.completions.push(self.completions[r].clone());
            out.texts.push(self.texts[r].clone());
            out.stops.push(self.stops[r]);
        }
        out
    }

    /// The per-position fields as tensors on `device`.
    pub fn tensors<B: Backend>(&self, device: &B::Device) -> RolloutTensors<B> {
        let shape = [self.rows, self.width()];
        let int = |v: Vec<i64>| Tensor::<B, 2, Int>::from_data(TensorData::new(v, shape), device);
        let mask = |v: &[u8]| int(v.iter().map(|&x| i64::from(x)).collect());
        RolloutTensors {
            ids: int(self.ids.iter().map(|&t| i64::from(t)).collect()),
            attention_mask: mask(&self.attention_mask),
            completion_mask: mask(&self.completion_mask),
            thinking_mask: Tensor::from_data(
                TensorData::new(self.thinking_mask.clone(), shape),
                device,
            ),
            thinking_states: Tensor::from_data(
                TensorData::new(
                    self.thinking_states.clone(),
                    [self.rows, self.width(), self.hidden],
                ),
                device,
            ),
            gate_mean: Tensor::from_data(TensorData::new(self.gate_mean.clone(), shape), device),
        }
    }
}

/// [`Rollouts`]' per-position fields on a device.
#[derive(Debug, Clone)]
pub struct RolloutTensors<B: Backend> {
    /// `[rows, width]`.
    pub ids: Tensor<B, 2, Int>,
    /// `[rows, width]`, 1/0.
    pub attention_mask: Tensor<B, 2, Int>,
    /// `[rows, width]`, 1/0.
    pub completion_mask: Tensor<B, 2, Int>,
    /// `[rows, width]`.
    pub thinking_mask: Tensor<B, 2, Bool>,
    /// `[rows, width, hidden]`, f32.
    pub thinking_states: Tensor<B, 3>,
    /// `[rows, width]`, f32.
    pub gate_mean: Tensor<B, 2>,
}

/// Rolls out `config.group_size` completions of each of `prompts` (token ids) with `model`.
/// `tokenizer` decodes completions (for the delimiter and the returned texts).
pub fn rollout<B: Backend>(
    model: &ThinkingLm<B>,
    tokenizer: &Tokenizer,
    prompts: &[Vec<u32>],
    config: &RolloutConfig,
) -> Result<Rollouts> {
    if prompts.is_empty() || config.group_size == 0 {
        return Err(CoreError::Shape(format!(
            "rollouts need prompts and a group size, got {} prompts and group size {}",
            prompts.len(),
            config.group_size
        )));
    }
    let g = config.group_size;
    let prompt_width = prompts.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut stepper = Stepper::new(
        &model.lm,
        prompts.len(),
        prompt_width + config.max_new_tokens,
    );
    let first = stepper.prefill_ids(prompts, config.pad_token_id)?;
    let (stepper, first) = if g > 1 {
        (stepper.fork(g), first.fork(g))
    } else {
        (stepper, first)
    };
    let rows = prompts.len() * g;
    let mut policy = HrpoPolicy {
        model,
        delimiter: &config.answer_delimiter,
        mix: config.mix,
        thinking: vec![true; rows],
        records: vec![Vec::new(); rows],
    };
    let loop_config = DecodeConfig {
        max_new_tokens: config.max_new_tokens,
        eos_token_ids: config.eos_token_ids.clone(),
        stop_strings: Vec::new(),
        sampling: config.sampling.clone(),
        compact: true,
        stop: config.stop.clone(),
    };
    let decoded = decode(stepper, first, &mut policy, &loop_config, Some(tokenizer))?;
    let hidden = model.lm.config().hidden_size;
    let completion_width = decoded.tokens.iter().map(Vec::len).max().unwrap_or(0);
    let width = prompt_width + completion_width;
    let mut out = Rollouts {
        rows,
        prompt_width,
        completion_width,
        hidden,
        ids: Vec::with_capacity(rows * width),
        attention_mask: Vec::with_capacity(rows * width),
        completion_mask: Vec::with_capacity(rows * width),
        thinking_mask: Vec::with_capacity(rows * width),
        thinking_states: vec![0.0; rows * width * hidden],
        gate_mean: Vec::with_capacity(rows * width),
        hidden_ratio: Vec::with_capacity(rows * width),
        texts: Vec::with_capacity(rows),
        stops: decoded.stops,
        completions: Vec::new(),
    };
    for (r, (tokens, records)) in decoded.tokens.iter().zip(&policy.records).enumerate() {
        let prompt = &prompts[r / g];
        let pad = prompt_width - prompt.len();
        out.ids
            .extend(std::iter::repeat_n(config.pad_token_id, pad));
        out.ids.extend_from_slice(prompt);
        out.attention_mask.extend(std::iter::repeat_n(0, pad));
        out.attention_mask
            .extend(std::iter::repeat_n(1, prompt.len()));
        out.completion_mask
            .extend(std::iter::repeat_n(0, prompt_width));
        out.thinking_mask
            .extend(std::iter::repeat_n(false, prompt_width));
        out.gate_mean.extend(std::iter::repeat_n(1.0, prompt_width));
        out.hidden_ratio
            .extend(std::iter::repeat_n(0.0, prompt_width));
        for j in 0..completion_width {
            let real = j < tokens.len();
            out.ids
                .push(if real { tokens[j] } else { config.pad_token_id });
            out.attention_mask.push(u8::from(real));
            out.completion_mask.push(u8::from(real));
            // The last token is never fed, so its thinking state was never used.
            let record = records
                .get(j)
                .filter(|_| j + 1 < tokens.len())
                .and_then(|r| r.as_ref());
            out.thinking_mask.push(record.is_some());
            out.gate_mean.push(record.map_or(1.0, |r| r.gate));
            out.hidden_ratio
                .push(record.map_or(0.0, |r| r.hidden_ratio));
            if let Some(Record { state: h, .. }) = record {
                let at = (r * width + prompt_width + j) * hidden;
                out.thinking_states[at..at + hidden].copy_from_slice(h);
            }
        }
        out.texts.push(decode_ids(tokenizer, tokens, true)?);
    }
    out.completions = decoded.tokens;
    Ok(out)
}

/// What a mixed position recorded.
#[derive(Debug, Clone)]
struct Record {
    /// The thinking state.
    state: Vec<f32>,
    /// Mean gate `a`.
    gate: f32,
    /// Mean `sqrt(1 − a² + 1e−8)`.
    hidden_ratio: f32,
}

/// Samples a token per row and mixes its embedding with the thinking state while the row thinks.
struct HrpoPolicy<'a, B: Backend> {
    model: &'a ThinkingLm<B>,
    delimiter: &'a str,
    mix: bool,
    /// Per call row: the delimiter has not appeared yet.
    thinking: Vec<bool>,
    /// Per call row, per written token (`None` where the input was not mixed).
    records: Vec<Vec<Option<Record>>>,
}

impl<B: Backend> DecodePolicy<B> for HrpoPolicy<'_, B> {
    fn next(&mut self, view: &mut StepView<'_, B>) -> Result<NextInputs<B>> {
        let n = view.len();
        let draws: Vec<_> = (0..n).map(|i| view.sample(i)).collect();
        let mut mixing = vec![false; n];
        for (i, draw) in draws.iter().enumerate() {
            let row = view.row(i);
            if self.mix && self.thinking[row] {
                if view.text_with(i, draw.token)?.contains(self.delimiter) {
                    self.thinking[row] = false;
                } else {
                    mixing[i] = true;
                }
            }
        }
        let tokens: Vec<u32> = draws.iter().map(|d| d.token).collect();
        if !mixing.contains(&true) {
            for i in 0..n {
                self.records[view.row(i)].push(None);
            }
            return Ok(NextInputs::tokens(
                tokens.into_iter().map(Next::Write).collect(),
            ));
        }
        let h = match &self.model.projection {
            Some(projection) => projection.forward(view.hidden()),
            None => {
                let distributions: Vec<_> = draws.iter().map(|d| &d.distribution).collect();
                probability_weighted(self.model.lm.embed_tokens.weight.val(), &distributions)
            }
        }; // [n, hidden] f32
        let [_, hidden] = h.dims();
        let device = h.device();
        let ids: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, 1]), &device);
        let fused = self.model.fuse(ids, h.clone().reshape([n, 1, hidden]));
        let gate: Vec<f32> = host_vec(fused.a.clone().mean_dim(2));
        let keep: Vec<f32> = host_vec((fused.a.square().neg() + (1.0 + 1e-8)).sqrt().mean_dim(2));
        let states: Vec<f32> = host_vec(h);
        let mut actions = Vec::with_capacity(n);
        for i in 0..n {
            let record = mixing[i].then(|| Record {
                state: states[i * hidden..(i + 1) * hidden].to_vec(),
                gate: gate[i],
                hidden_ratio: keep[i],
            });
            self.records[view.row(i)].push(record);
            actions.push(if mixing[i] {
                Next::WriteAs(tokens[i])
            } else {
                Next::Write(tokens[i])
            });
        }
        Ok(NextInputs::vectors(actions, fused.x.reshape([n, hidden])))
    }
}

/// Every value of `t` on the host, f32.
fn host_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.cast(DType::F32)
        .into_data()
        .convert::<f32>()
        .into_vec()
        .expect("f32 data")
}
