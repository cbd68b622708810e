//! The one decoding loop of the workspace. A [`DecodePolicy`] decides, each step and for each live
//! row, what goes in next — a written token, a control token, a vector (a continuous thought), or a
//! written token whose input is a vector (HRPO's mixed input) — and the loop does the rest: EOS ids,
//! stop strings and the token budget per row, compaction of finished rows out of the batch, and
//! per-row seeded sampling (`seed + row`), so a row's result does not depend on what else is in
//! its batch.
//!
//! `generate`, CODI's evaluation, hybrid decoding and HRPO rollouts are policies on this loop:
//!
//! ```no_run
//! # use burn::prelude::*;
//! # use latent_core::infer::{decode, DecodeConfig, DecodePolicy, Next, NextInputs, StepView, Stepper};
//! /// Greedy decoding, except that the first two steps of every row are continuous thoughts
//! /// (its last hidden state fed back, as Coconut does).
//! struct TwoThoughts;
//!
//! impl<B: Backend> DecodePolicy<B> for TwoThoughts {
//!     fn next(&mut self, view: &mut StepView<'_, B>) -> latent_core::Result<NextInputs<B>> {
//!         if view.step() < 2 {
//!             return Ok(NextInputs::vectors(vec![Next::Thought; view.len()], view.hidden()));
//!         }
//!         let actions = (0..view.len()).map(|i| Next::Write(view.argmax(i))).collect();
//!         Ok(NextInputs::tokens(actions))
//!     }
//! }
//!
//! # fn demo<B: Backend>(model: &latent_core::CausalLm<B>) -> latent_core::Result<()> {
//! let prompts = vec![vec![1, 2, 3], vec![4, 5]];
//! let mut stepper = Stepper::new(model, prompts.len(), 64);
//! let first = stepper.prefill_ids(&prompts, 0)?;
//! let config = DecodeConfig { max_new_tokens: 16, eos_token_ids: vec![2], ..Default::default() };
//! let out = decode(stepper, first, &mut TwoThoughts, &config, None)?;
//! println!("{:?}", out.tokens);
//! # Ok(()) }
//! ```

use burn::prelude::*;
use tokenizers::Tokenizer;

use super::sampling::{argmax, Sampler, SamplingConfig, TokenDistribution};
use super::stepper::{StepOutput, Stepper};
use crate::model::kv_cache::index_tensor;
use crate::stop::{check_stop, StopFlag};
use crate::{CoreError, Result};

/// What one live row does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Write this token (it counts toward the budget; EOS ids and stop strings apply) and feed its
    /// embedding.
    Write(u32),
    /// Write this token, but feed the row's vector of [`NextInputs::vectors`] in place of its
    /// embedding (e.g. the token mixed with a thinking state through a residual).
    WriteAs(u32),
    /// Feed this token without writing it (a control token such as CODI's `<eot>`).
    Feed(u32),
    /// Feed the row's vector and write nothing (a continuous thought).
    Thought,
    /// The row is done.
    Stop,
}

impl Next {
    fn feeds_vector(self) -> bool {
        matches!(self, Next::WriteAs(_) | Next::Thought)
    }
}

/// A policy's answer for one step: an action per live row, and the vectors those that feed one
/// take (`[live, hidden]`, row `i` for live row `i`; other rows of it are ignored).
#[derive(Debug, Clone)]
pub struct NextInputs<B: Backend> {
    /// One action per live row, in the order of the [`StepView`].
    pub actions: Vec<Next>,
    /// `[live, hidden]`; required when an action feeds a vector.
    pub vectors: Option<Tensor<B, 2>>,
}

impl<B: Backend> NextInputs<B> {
    /// Actions that feed no vector.
    pub fn tokens(actions: Vec<Next>) -> Self {
        Self {
            actions,
            vectors: None,
        }
    }

    /// Actions with the vectors `[live, hidden]` that [`Next::WriteAs`] and [`Next::Thought`] take.
    pub fn vectors(actions: Vec<Next>, vectors: Tensor<B, 2>) -> Self {
        Self {
            actions,
            vectors: Some(vectors),
        }
    }
}

/// The decisions of a decoding procedure.
pub trait DecodePolicy<B: Backend> {
    /// The next input of every live row of `view` (one action per row, in its order).
    fn next(&mut self, view: &mut StepView<'_, B>) -> Result<NextInputs<B>>;
}

/// Why a row stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StopReason {
    /// It wrote an EOS id (kept as its last token).
    Eos,
    /// Its decoded text contains a stop string.
    StopString,
    /// It wrote `max_new_tokens` tokens.
    #[default]
    Budget,
    /// The policy returned [`Next::Stop`].
    Policy,
}

/// Settings of the loop (the policy holds its own).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeConfig {
    /// A row stops right after writing this many tokens (`usize::MAX`: the policy bounds them).
    pub max_new_tokens: usize,
    /// A row stops after writing one of these (it is kept as the row's last token).
    pub eos_token_ids: Vec<u32>,
    /// A row stops once its decoded text contains one of these (needs a tokenizer).
    pub stop_strings: Vec<String>,
    /// How [`StepView::sample`] draws; row `r` of the call uses seed `sampling.seed + r`.
    pub sampling: SamplingConfig,
    /// Drop finished rows from the batch (and their cache rows). Off: they stay as masked padding.
    pub compact: bool,
    /// When this flag is raised (Ctrl-C, SIGTERM), decoding ends before its next step with
    /// [`CoreError::StopRequested`]: a stop is honoured within one decoding step.
    pub stop: Option<StopFlag>,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 256,
            eos_token_ids: Vec::new(),
            stop_strings: Vec::new(),
            sampling: SamplingConfig::greedy(),
            compact: true,
            stop: None,
        }
    }
}

/// What the loop produced, per row of the call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    /// Written tokens per row (an EOS that stopped the row is the last one).
    pub tokens: Vec<Vec<u32>>,
    /// Why each row stopped.
    pub stops: Vec<StopReason>,
    /// Model steps taken after the prefill.
    pub steps: usize,
}

/// One token drawn by [`StepView::sample`] and the distribution it was drawn from.
#[derive(Debug, Clone, PartialEq)]
pub struct Draw {
    /// The token.
    pub token: u32,
    /// After temperature, top-k and top-p (the plain softmax for greedy decoding).
    pub distribution: TokenDistribution,
}

/// What a policy sees at one step: the model's outputs for the live rows, what each has written,
/// and its sampler.
pub struct StepView<'a, B: Backend> {
    step: usize,
    rows: &'a [usize],
    logits: Tensor<B, 2>,
    hidden: Tensor<B, 2>,
    host: Option<Vec<Vec<f32>>>,
    written: &'a [Vec<u32>],
    samplers: &'a mut [Sampler],
    texts: &'a mut [Option<(usize, String)>],
    tokenizer: Option<&'a Tokenizer>,
}

impl<B: Backend> StepView<'_, B> {
    /// 0-based step index (0 = the outputs of the prefill).
    pub fn step(&self) -> usize {
        self.step
    }

    /// Live rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row is live (never the case inside [`DecodePolicy::next`]).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The row of the call (its index in the prompts) that live row `i` is.
    pub fn row(&self, i: usize) -> usize {
        self.rows[i]
    }

    /// Logits of the live rows, `[live, vocab]`.
    pub fn logits(&self) -> Tensor<B, 2> {
        self.logits.clone()
    }

    /// Final hidden states (after the final norm) of the live rows, `[live, hidden]`.
    pub fn hidden(&self) -> Tensor<B, 2> {
        self.hidden.clone()
    }

    /// Logits of live row `i` on the host (all rows are fetched on first use).
    pub fn logits_row(&mut self, i: usize) -> &[f32] {
        if self.host.is_none() {
            self.host = Some(host_rows(self.logits.clone()));
        }
        &self.host.as_ref().expect("fetched")[i]
    }

    /// The arg-max token of live row `i`.
    pub fn argmax(&mut self, i: usize) -> u32 {
        argmax(self.logits_row(i)) as u32
    }

    /// A token for live row `i` drawn with the loop's sampling settings (arg-max when greedy), from
    /// that row's own seeded sampler.
    pub fn sample(&mut self, i: usize) -> Draw {
        let row = self.rows[i];
        self.logits_row(i);
        let logits = &self.host.as_ref().expect("fetched")[i];
        let sampler = &mut self.samplers[row];
        let distribution = sampler.distribution_with_support(logits);
        let token = if sampler.config().is_greedy() {
            argmax(logits) as u32
        } else {
            sampler.draw(&distribution.probs)
        };
        Draw {
            token,
            distribution,
        }
    }

    /// [`StepView::sample`]'s token alone (greedy decoding computes no distribution).
    pub fn sample_token(&mut self, i: usize) -> u32 {
        if self.samplers[self.rows[i]].config().is_greedy() {
            self.argmax(i)
        } else {
            self.sample(i).token
        }
    }

    /// The tokens live row `i` has written so far.
    pub fn written(&self, i: usize) -> &[u32] {
        &self.written[self.rows[i]]
    }

    /// The decoded text of what live row `i` has written (special tokens skipped; needs a tokenizer).
    pub fn text(&mut self, i: usize) -> Result<&str> {
        let row = self.rows[i];
        let tokenizer = self.tokenizer.ok_or_else(no_tokenizer)?;
        cached_text(tokenizer, &self.written[row], &mut self.texts[row])
    }

    /// The decoded text live row `i` would have after writing `token` (special tokens kept, as
    /// transformers' `batch_decode` does by default).
    pub fn text_with(&self, i: usize, token: u32) -> Result<String> {
        let tokenizer = self.tokenizer.ok_or_else(no_tokenizer)?;
        let mut ids = self.written[self.rows[i]].clone();
        ids.push(token);
        decode_ids(tokenizer, &ids, false)
    }
}

fn no_tokenizer() -> CoreError {
    CoreError::Shape("this policy reads decoded text: give the loop a tokenizer".into())
}

/// The decoded text of `ids`, reusing `cache` when it was made for as many tokens.
fn cached_text<'c>(
    tokenizer: &Tokenizer,
    ids: &[u32],
    cache: &'c mut Option<(usize, String)>,
) -> Result<&'c str> {
    if cache.as_ref().map(|(n, _)| *n) != Some(ids.len()) {
        *cache = Some((ids.len(), decode_ids(tokenizer, ids, true)?));
    }
    Ok(&cache.as_ref().expect("decoded").1)
}

/// `ids` as text.
pub(crate) fn decode_ids(tokenizer: &Tokenizer, ids: &[u32], skip_special: bool) -> Result<String> {
    tokenizer
        .decode(ids, skip_special)
        .map_err(|e| CoreError::Tokenizer {
            path: "<tokenizer>".into(),
            message: format!("decoding {} ids: {e}", ids.len()),
        })
}

/// `[rows, cols]` on the host, one `Vec` per row.
fn host_rows<B: Backend>(t: Tensor<B, 2>) -> Vec<Vec<f32>> {
    let [_, v] = t.dims();
    let flat: Vec<f32> = t.into_data().convert::<f32>().into_vec().expect("f32 data");
    flat.chunks(v.max(1)).map(<[f32]>::to_vec).collect()
}

/// Decodes from a prefilled `stepper` (whose last outputs are `first`) until every row stops.
///
/// `tokenizer` is needed for stop strings and for policies that read text. Rows are those of the
/// stepper's batch, in order; row `r` samples with seed `config.sampling.seed + r`.
pub fn decode<B: Backend, P: DecodePolicy<B>>(
    mut stepper: Stepper<'_, B>,
    first: StepOutput<B>,
    policy: &mut P,
    config: &DecodeConfig,
    tokenizer: Option<&Tokenizer>,
) -> Result<Decoded> {
    if !config.stop_strings.is_empty() && tokenizer.is_none() {
        return Err(CoreError::Shape("stop strings need a tokenizer".into()));
    }
    let b = stepper.batch();
    if first.logits.dims()[0] != b {
        return Err(CoreError::Shape(format!(
            "first step output has {} rows for a batch of {b}",
            first.logits.dims()[0]
        )));
    }
    let mut samplers: Vec<Sampler> = (0..b as u64)
        .map(|r| {
            Sampler::new(SamplingConfig {
                seed: config.sampling.seed.wrapping_add(r),
                ..config.sampling.clone()
            })
        })
        .collect();
    let mut written: Vec<Vec<u32>> = vec![Vec::new(); b];
    let mut texts: Vec<Option<(usize, String)>> = vec![None; b];
    let mut stops = vec![StopReason::Budget; b];
    // The call rows still decoding, in batch order.
    let mut live: Vec<usize> = (0..b).collect();
    let mut out = first;
    let mut steps = 0;
    if config.max_new_tokens == 0 {
        live.clear();
    }
    while !live.is_empty() {
        check_stop(config.stop.as_ref(), "decoding")?;
        let batch_rows = stepper.live_rows();
        let (logits, hidden) = if batch_rows.len() == stepper.batch() {
            (out.logits, out.hidden)
        } else {
            let idx = index_tensor::<B>(&batch_rows, &out.logits.device());
            (out.logits.select(0, idx.clone()), out.hidden.select(0, idx))
        };
        let mut view = StepView {
            step: steps,
            rows: &live,
            logits,
            hidden,
            host: None,
            written: &written,
            samplers: &mut samplers,
            texts: &mut texts,
            tokenizer,
        };
        let NextInputs { actions, vectors } = policy.next(&mut view)?;
        if actions.len() != live.len() {
            return Err(CoreError::Shape(format!(
                "the policy gave {} actions for {} live rows",
                actions.len(),
                live.len()
            )));
        }
        if actions.iter().any(|a| a.feeds_vector()) && vectors.is_none() {
            return Err(CoreError::Shape(
                "the policy asked to feed vectors but gave none".into(),
            ));
        }
        let mut keep = Vec::with_capacity(live.len());
        let mut ids = Vec::with_capacity(live.len());
        for (i, action) in actions.iter().enumerate() {
            let row = live[i];
            let token = match *action {
                Next::Stop => {
                    stops[row] = StopReason::Policy;
                    None
                }
                Next::Write(t) | Next::WriteAs(t) => {
                    written[row].push(t);
                    match stop_after_write(config, tokenizer, &written[row], &mut texts[row])? {
                        Some(reason) => {
                            stops[row] = reason;
                            None
                        }
                        None => Some(t),
                    }
                }
                Next::Feed(t) => Some(t),
                Next::Thought => Some(0),
            };
            if let Some(t) = token {
                keep.push(i);
                ids.push(t);
            }
        }
        if keep.is_empty() {
            break;
        }
        let use_vector: Vec<bool> = keep.iter().map(|&i| actions[i].feeds_vector()).collect();
        let vectors = vectors.filter(|_| use_vector.contains(&true)).map(|v| {
            if keep.len() == live.len() {
                v
            } else {
                let idx = index_tensor::<B>(&keep, &v.device());
                v.select(0, idx)
            }
        });
        let kept_batch_rows: Vec<usize> = keep.iter().map(|&i| batch_rows[i]).collect();
        if config.compact {
            if keep.len() < stepper.batch() {
                stepper.retain(&kept_batch_rows);
            }
            out = stepper.step_batch(&ids, vectors, &use_vector)?;
        } else {
            for (i, &r) in batch_rows.iter().enumerate() {
                if !keep.contains(&i) {
                    stepper.finish(r);
                }
            }
            let (ids, vectors, use_vector) = spread_rows(
                stepper.batch(),
                &kept_batch_rows,
                &ids,
                vectors,
                &use_vector,
            );
            out = stepper.step_batch(&ids, vectors, &use_vector)?;
        }
        live = keep.iter().map(|&i| live[i]).collect();
        steps += 1;
    }
    Ok(Decoded {
        tokens: written,
        stops,
        steps,
    })
}

/// Whether a row that just wrote the last token of `written` stops, and why.
fn stop_after_write(
    config: &DecodeConfig,
    tokenizer: Option<&Tokenizer>,
    written: &[u32],
    text: &mut Option<(usize, String)>,
) -> Result<Option<StopReason>> {
    let last = *written.last().expect("a token was written");
    if config.eos_token_ids.contains(&last) {
        return Ok(Some(StopReason::Eos));
    }
    if let Some(tokenizer) = tokenizer.filter(|_| !config.stop_strings.is_empty()) {
        let text = cached_text(tokenizer, written, text)?;
        if config
            .stop_strings
            .iter()
            .any(|s| text.contains(s.as_str()))
        {
            return Ok(Some(StopReason::StopString));
        }
    }
    if written.len() >= config.max_new_tokens {
        return Ok(Some(StopReason::Budget));
    }
    Ok(None)
}

/// The inputs of the rows `rows` of a batch of `b` spread to all `b` rows (the others, finished,
/// take token 0 and are masked by the stepper).
fn spread_rows<B: Backend>(
    b: usize,
    rows: &[usize],
    ids: &[u32],
    vectors: Option<Tensor<B, 2>>,
    use_vector: &[bool],
) -> (Vec<u32>, Option<Tensor<B, 2>>, Vec<bool>) {
    let mut all_ids = vec![0; b];
    let mut all_use = vec![false; b];
    for (k, &r) in rows.iter().enumerate() {
        all_ids[r] = ids[k];
        all_use[r] = use_vector[k];
    }
    let vectors = vectors.map(|v| {
        let [_, h] = v.dims();
        let zero = Tensor::<B, 2>::zeros([1, h], (&v.device(), v.dtype()));
        let parts = (0..b)
            .map(|r| match rows.iter().position(|&x| x == r) {
                Some(k) => v.clone().narrow(0, k, 1),
                None => zero.clone(),
            })
            .collect();
        Tensor::cat(parts, 0)
    });
    (all_ids, vectors, all_use)
}
