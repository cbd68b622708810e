//! Greedy pass@1 with HRPO's protocol (`eval_gsm8k.py`): the prompts as in training, arg-max
//! decoding (mixing thinking states when the policy is hybrid) up to `max_new_tokens`, and the
//! normalised answer after the last `####` compared with the gold answer.

use std::time::Instant;

use burn::prelude::*;
use latent_core::infer::SamplingConfig;
use latent_core::latent::{rollout, RolloutConfig, ThinkingLm};
use latent_core::train::StopFlag;
use serde::Serialize;
use tokenizers::Tokenizer;

use crate::prompt::PromptExample;
use crate::reward::answer_correct;
use crate::Result;

/// How to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSettings {
    /// Prompts per batch.
    pub batch_size: usize,
    /// Longest completion.
    pub max_new_tokens: usize,
    /// Mix thinking states while a completion thinks.
    pub mix: bool,
    /// Where thinking stops.
    pub answer_delimiter: String,
    /// End-of-sequence ids.
    pub eos_token_ids: Vec<u32>,
    /// Padding id.
    pub pad_token_id: u32,
    /// Ends the evaluation with `StopRequested` within one decoding step once raised.
    pub stop: Option<StopFlag>,
}

/// One evaluated prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalRecord {
    /// The question.
    pub question: String,
    /// The gold answer.
    pub gold: String,
    /// The completion (special tokens skipped).
    pub completion: String,
    /// Whether its answer is right.
    pub correct: bool,
    /// Completion tokens (EOS included).
    pub tokens: usize,
    /// Positions whose input mixed a thinking state.
    pub thinking_tokens: usize,
}

/// Results of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalSummary {
    /// Prompts.
    pub examples: usize,
    /// Right answers.
    pub correct: usize,
    /// `correct / examples`.
    pub accuracy: f64,
    /// Standard error of the accuracy, `sqrt(p (1 − p) / n)`.
    pub standard_error: f64,
    /// Mean completion tokens.
    pub mean_tokens: f64,
    /// Mean mixed positions.
    pub mean_thinking_tokens: f64,
    /// Wall time.
    pub seconds: f64,
    /// Every prompt.
    pub records: Vec<EvalRecord>,
}

/// Greedy pass@1 of `model` on `prompts`; `progress` sees the count done after each batch.
pub fn evaluate<B: Backend>(
    model: &ThinkingLm<B>,
    tokenizer: &Tokenizer,
    prompts: &[PromptExample],
    settings: &EvalSettings,
    mut progress: impl FnMut(usize),
) -> Result<EvalSummary> {
    let started = Instant::now();
    let config = RolloutConfig {
        group_size: 1,
        max_new_tokens: settings.max_new_tokens,
        sampling: SamplingConfig::greedy(),
        eos_token_ids: settings.eos_token_ids.clone(),
        pad_token_id: settings.pad_token_id,
        answer_delimiter: settings.answer_delimiter.clone(),
        mix: settings.mix,
        stop: settings.stop.clone(),
    };
    let mut records = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(settings.batch_size.max(1)) {
        let ids: Vec<Vec<u32>> = chunk.iter().map(|p| p.ids.clone()).collect();
        let out = rollout(model, tokenizer, &ids, &config)?;
        let w = out.width();
        for (r, p) in chunk.iter().enumerate() {
            let text = &out.texts[r];
            records.push(EvalRecord {
                question: p.question.clone(),
                gold: p.gold.clone(),
                completion: text.clone(),
                correct: answer_correct(text, &p.gold),
                tokens: out.completions[r].len(),
                thinking_tokens: out.thinking_mask[r * w..(r + 1) * w]
                    .iter()
                    .filter(|&&m| m)
                    .count(),
            });
        }
        progress(records.len());
    }
    let n = records.len().max(1) as f64;
    let correct = records.iter().filter(|r| r.correct).count();
    let accuracy = correct as f64 / n;
    Ok(EvalSummary {
        examples: records.len(),
        correct,
        accuracy,
        standard_error: (accuracy * (1.0 - accuracy) / n).sqrt(),
        mean_tokens: records.iter().map(|r| r.tokens).sum::<usize>() as f64 / n,
        mean_thinking_tokens: records.iter().map(|r| r.thinking_tokens).sum::<usize>() as f64 / n,
        seconds: started.elapsed().as_secs_f64(),
        records,
    })
}
