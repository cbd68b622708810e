//! GSM8K-style evaluation (reference `test.py`): questions left-padded in batches, `Q ‖ <bot>`, the
//! continuous thoughts, `<eot>`, then greedy decoding to EOS (at most `max_new_tokens`); the
//! prediction is the last number of the decoded text, compared with the gold number as floats.
//! Baselines decode from `Q` directly. The added ids (`<bot>`, `<eot>`, a new pad) never win the
//! arg-max. Latent probing decodes each thought's position through the LM head (top-k tokens), as
//! in the paper's §5.

use std::time::Instant;

use burn::prelude::*;
use latent_core::infer::sampling::{argmax, softmax};
use latent_core::infer::{decode, DecodeConfig, DecodePolicy, Next, NextInputs, StepView, Stepper};
use latent_core::train::{check_stop, StopFlag};
use latent_core::LmInput;
use latent_datasets::answer::codi_correct;
use serde::Serialize;
use tokenizers::Tokenizer;

use crate::data::Tokenized;
use crate::model::CodiModel;
use crate::{CodiError, Result, Task};

/// Evaluation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalConfig {
    /// Questions per batch.
    pub batch_size: usize,
    /// Decoding budget per question (the reference uses 256).
    pub max_new_tokens: usize,
    /// Continuous thoughts per question (CODI models).
    pub num_latent: usize,
    /// Tokens listed per thought when probing.
    pub probe_top_k: usize,
    /// Examples (from the first) whose thoughts are probed.
    pub probe_examples: usize,
    /// Reproduce the reference code's masking (see [`crate::loss::LossConfig::reference_masking`]).
    pub reference_masking: bool,
    /// Ends the evaluation with `CoreError::StopRequested` before its next batch once raised
    /// (Ctrl-C, SIGTERM): a stop is honoured within one evaluation batch.
    pub stop: Option<StopFlag>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            batch_size: 32,
            max_new_tokens: 256,
            num_latent: 6,
            probe_top_k: 5,
            probe_examples: 0,
            reference_masking: false,
            stop: None,
        }
    }
}

/// What every evaluated question records, whatever the decoding mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnswerRecord {
    /// The question.
    pub question: String,
    /// The gold answer.
    pub gold: String,
    /// The decoded output.
    pub output: String,
    /// Whether the last number of `output` equals the gold number.
    pub correct: bool,
    /// Text tokens decoded (EOS and mode markers not counted).
    pub tokens: usize,
    /// Continuous thoughts fed.
    pub latent_steps: usize,
}

impl AnswerRecord {
    /// Decodes `ids` (the text tokens written for `example`) and scores them against its gold answer.
    pub fn decode(
        tokenizer: &Tokenizer,
        example: &Tokenized,
        ids: &[u32],
        latent_steps: usize,
    ) -> Result<Self> {
        let output = decode_text(tokenizer, ids)?;
        Ok(Self {
            question: example.question_text.clone(),
            gold: example.gold.text.clone(),
            correct: codi_correct(&output, &example.gold),
            output,
            tokens: ids.len(),
            latent_steps,
        })
    }
}

/// `ids` as text, special tokens skipped.
pub(crate) fn decode_text(tokenizer: &Tokenizer, ids: &[u32]) -> Result<String> {
    tokenizer
        .decode(ids, true)
        .map_err(|err| CodiError::Tokenizer(format!("decoding {ids:?}: {err}")))
}

/// One evaluated question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalRecord {
    /// Question, output and score.
    #[serde(flatten)]
    pub answer: AnswerRecord,
    /// For probed examples: per thought, the top tokens and their probabilities.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub probe: Vec<Vec<(String, f32)>>,
}

/// Results of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalSummary {
    /// The task evaluated.
    pub task: Task,
    /// Questions.
    pub examples: usize,
    /// Correct answers.
    pub correct: usize,
    /// `correct / examples`.
    pub accuracy: f64,
    /// Mean decoded tokens per question.
    pub mean_tokens: f64,
    /// Mean continuous thoughts per question.
    pub mean_latent_steps: f64,
    /// Wall time of the whole evaluation.
    pub seconds: f64,
    /// `seconds / examples`.
    pub seconds_per_example: f64,
    /// Every question.
    pub records: Vec<EvalRecord>,
}

/// Top-`k` tokens of one logits row, with probabilities.
fn top_k(tokenizer: &Tokenizer, row: &[f32], k: usize) -> Vec<(String, f32)> {
    let probs = softmax(row);
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    order
        .into_iter()
        .take(k)
        .map(|i| {
            let text = tokenizer
                .decode(&[i as u32], false)
                .unwrap_or_else(|_| format!("<{i}>"));
            (text, probs[i])
        })
        .collect()
}

/// Evaluates `examples` with a model trained for `task`.
pub fn evaluate<B: Backend>(
    model: &CodiModel<B>,
    task: Task,
    tokenizer: &Tokenizer,
    examples: &[Tokenized],
    config: &EvalConfig,
    mut progress: impl FnMut(usize),
) -> Result<EvalSummary> {
    if examples.is_empty() {
        return Err(CodiError::Empty("the evaluation set".into()));
    }
    let start = Instant::now();
    let mut records = Vec::with_capacity(examples.len());
    for (chunk_index, chunk) in examples.chunks(config.batch_size.max(1)).enumerate() {
        check_stop(config.stop.as_ref(), "evaluation")?;
        let first = chunk_index * config.batch_size.max(1);
        let probe_rows = config.probe_examples.saturating_sub(first).min(chunk.len());
        records.extend(decode_batch(
            model, task, tokenizer, chunk, config, probe_rows,
        )?);
        progress(records.len());
    }
    let seconds = start.elapsed().as_secs_f64();
    let n = records.len();
    let correct = records.iter().filter(|r| r.answer.correct).count();
    Ok(EvalSummary {
        task,
        examples: n,
        correct,
        accuracy: correct as f64 / n as f64,
        mean_tokens: records.iter().map(|r| r.answer.tokens).sum::<usize>() as f64 / n as f64,
        mean_latent_steps: records.iter().map(|r| r.answer.latent_steps).sum::<usize>() as f64
            / n as f64,
        seconds,
        seconds_per_example: seconds / n as f64,
        records,
    })
}

/// Greedy decoding of one batch on the decoding loop.
fn decode_batch<B: Backend>(
    model: &CodiModel<B>,
    task: Task,
    tokenizer: &Tokenizer,
    chunk: &[Tokenized],
    config: &EvalConfig,
    probe_rows: usize,
) -> Result<Vec<EvalRecord>> {
    let latents = if task.uses_latents() {
        config.num_latent
    } else {
        0
    };
    let questions: Vec<Vec<u32>> = chunk.iter().map(|e| e.question.clone()).collect();
    let settings = ThoughtDecoding {
        latents,
        max_new_tokens: config.max_new_tokens,
        reference_masking: config.reference_masking,
    };
    let probing = Probing {
        tokenizer,
        rows: probe_rows,
        top_k: config.probe_top_k,
    };
    let (decoded, probes) = run_decode(model, &questions, &settings, Some(probing), None)?;
    chunk
        .iter()
        .zip(decoded)
        .zip(probes)
        .map(|((e, ids), probe)| {
            Ok(EvalRecord {
                answer: AnswerRecord::decode(tokenizer, e, &ids, latents)?,
                probe,
            })
        })
        .collect()
}

/// Edits CODI's continuous thoughts before they are fed (noise for sampling latent paths, a
/// forced prefix for Monte-Carlo continuations) and sees what is fed.
pub trait ThoughtHook<B: Backend> {
    /// `thoughts` `[rows.len(), hidden]` are about to be fed as thought `step` (0-based) to the
    /// batch rows `rows` (indices into the questions passed to [`decode_with_thoughts`]); returns
    /// what to feed instead, same shape.
    fn edit(&mut self, step: usize, rows: &[usize], thoughts: Tensor<B, 2>) -> Tensor<B, 2>;
}

/// How [`decode_with_thoughts`] decodes.
#[derive(Debug, Clone, PartialEq)]
pub struct ThoughtDecoding {
    /// Continuous thoughts per question (0: decode from the question directly).
    pub latents: usize,
    /// Decoding budget after `<eot>`.
    pub max_new_tokens: usize,
    /// Reproduce the reference code's masking (see [`EvalConfig::reference_masking`]).
    pub reference_masking: bool,
}

/// CODI's decoding of `questions` (token ids, one row each): `Q ‖ <bot>`, `settings.latents`
/// thoughts (each passed through `hook` when given), `<eot>`, then greedy text to EOS. Returns the
/// text ids written per row, EOS removed.
pub fn decode_with_thoughts<B: Backend>(
    model: &CodiModel<B>,
    questions: &[Vec<u32>],
    settings: &ThoughtDecoding,
    hook: Option<&mut dyn ThoughtHook<B>>,
) -> Result<Vec<Vec<u32>>> {
    Ok(run_decode(model, questions, settings, None, hook)?.0)
}

/// Which rows of a batch have their thoughts probed through the LM head.
struct Probing<'a> {
    tokenizer: &'a Tokenizer,
    rows: usize,
    top_k: usize,
}

/// Probes of one row: per thought, the top tokens and their probabilities.
type RowProbes = Vec<Vec<(String, f32)>>;

/// The one CODI decoding of a batch: text ids per row (EOS removed) and per-row probes.
fn run_decode<B: Backend>(
    model: &CodiModel<B>,
    questions: &[Vec<u32>],
    settings: &ThoughtDecoding,
    probing: Option<Probing<'_>>,
    hook: Option<&mut dyn ThoughtHook<B>>,
) -> Result<(Vec<Vec<u32>>, Vec<RowProbes>)> {
    let t = model.tokens;
    let b = questions.len();
    let latents = settings.latents;
    let prompts: Vec<Vec<u32>> = questions
        .iter()
        .map(|q| {
            let mut p = q.clone();
            if latents > 0 {
                p.push(t.bot);
            }
            p
        })
        .collect();
    let width = prompts.iter().map(Vec::len).max().unwrap_or(1);
    let capacity = width + latents + 1 + settings.max_new_tokens;
    let mut stepper = Stepper::new(&model.lm, b, capacity);
    let first = if settings.reference_masking {
        let device = model.lm.device();
        let input = LmInput::left_padded(&prompts, t.pad, &device).position_ids(
            Tensor::<B, 1, Int>::arange(0..width as i64, &device)
                .unsqueeze::<2>()
                .expand([b, width]),
        );
        let out = stepper.prefill(input)?;
        stepper.cache_mut().unmask_filled();
        out
    } else {
        stepper.prefill_ids(&prompts, t.pad)?
    };
    let mut policy = CodiDecode {
        model,
        latents,
        probing,
        probes: vec![Vec::new(); b],
        hook,
    };
    let loop_config = DecodeConfig {
        max_new_tokens: settings.max_new_tokens,
        eos_token_ids: vec![t.eos],
        ..DecodeConfig::default()
    };
    let decoded = decode(stepper, first, &mut policy, &loop_config, None)?;
    let tokens = decoded
        .tokens
        .into_iter()
        .map(|mut ids| {
            if ids.last() == Some(&t.eos) {
                ids.pop();
            }
            ids
        })
        .collect();
    Ok((tokens, policy.probes))
}

/// CODI's decoding: `latents` continuous thoughts (the projected last hidden state, edited by the
/// hook when there is one), `<eot>`, then greedy text over the base vocabulary (the added ids
/// never win).
struct CodiDecode<'a, 'h, B: Backend> {
    model: &'a CodiModel<B>,
    latents: usize,
    probing: Option<Probing<'a>>,
    /// Per row, per thought: the top tokens of the position it was fed at.
    probes: Vec<RowProbes>,
    hook: Option<&'h mut dyn ThoughtHook<B>>,
}

impl<B: Backend> DecodePolicy<B> for CodiDecode<'_, '_, B> {
    fn next(&mut self, view: &mut StepView<'_, B>) -> latent_core::Result<NextInputs<B>> {
        let step = view.step();
        let t = self.model.tokens;
        if step < self.latents {
            if let Some(probing) = &self.probing {
                for i in 0..view.len() {
                    let row = view.row(i);
                    if row < probing.rows {
                        let logits = &view.logits_row(i)[..t.base_vocab];
                        let probe = top_k(probing.tokenizer, logits, probing.top_k);
                        self.probes[row].push(probe);
                    }
                }
            }
            let mut thoughts = self.model.thought(view.hidden());
            if let Some(hook) = self.hook.as_deref_mut() {
                let rows: Vec<usize> = (0..view.len()).map(|i| view.row(i)).collect();
                thoughts = hook.edit(step, &rows, thoughts);
            }
            return Ok(NextInputs::vectors(
                vec![Next::Thought; view.len()],
                thoughts,
            ));
        }
        if step == self.latents && self.latents > 0 {
            return Ok(NextInputs::tokens(vec![Next::Feed(t.eot); view.len()]));
        }
        let actions = (0..view.len())
            .map(|i| Next::Write(argmax(&view.logits_row(i)[..t.base_vocab]) as u32))
            .collect();
        Ok(NextInputs::tokens(actions))
    }
}
