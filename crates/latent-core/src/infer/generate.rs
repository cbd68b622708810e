//! `generate`: batched sampling on top of the [`Stepper`], with EOS ids, stop strings, a token budget
//! and optional per-step distributions.

use std::time::Instant;

use burn::prelude::*;
use tokenizers::Tokenizer;

use super::sampling::{Sampler, SamplingConfig};
use super::stepper::Stepper;
use crate::{CausalLm, CoreError, Result};

/// What to generate.
#[derive(Debug, Clone, Default)]
pub struct GenerateConfig {
    /// Upper bound on new tokens per sequence.
    pub max_new_tokens: usize,
    /// Token choice.
    pub sampling: SamplingConfig,
    /// A sequence stops after emitting one of these (it is kept in `tokens`, not in `texts`).
    pub eos_token_ids: Vec<u32>,
    /// A sequence stops once its decoded text contains one of these (the text is cut before it).
    pub stop_strings: Vec<String>,
    /// Keep the distribution each token was drawn from (`[vocab]` per step and sequence).
    pub return_distributions: bool,
    /// Id used to left-pad prompts (masked out).
    pub pad_token_id: u32,
}

/// The result of [`generate`].
#[derive(Debug, Clone, Default)]
pub struct Generation {
    /// New token ids per sequence.
    pub tokens: Vec<Vec<u32>>,
    /// Decoded new text per sequence (special tokens skipped; empty without a tokenizer).
    pub texts: Vec<String>,
    /// Per sequence, per step: the distribution the token was drawn from (if requested).
    pub distributions: Vec<Vec<Vec<f32>>>,
    /// New tokens over all sequences.
    pub new_tokens: usize,
    /// Wall time of the prefill.
    pub prefill_seconds: f64,
    /// Wall time of the decoding steps.
    pub decode_seconds: f64,
}

/// Generates continuations of token `prompts` (left-padded into one batch).
pub fn generate<B: Backend>(
    model: &CausalLm<B>,
    tokenizer: Option<&Tokenizer>,
    prompts: &[Vec<u32>],
    config: &GenerateConfig,
) -> Result<Generation> {
    if !config.stop_strings.is_empty() && tokenizer.is_none() {
        return Err(CoreError::Shape("stop strings need a tokenizer".into()));
    }
    let b = prompts.len();
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let mut stepper = Stepper::new(model, b, longest + config.max_new_tokens);
    let mut sampler = Sampler::new(config.sampling.clone());
    let mut out = Generation {
        tokens: vec![Vec::new(); b],
        texts: vec![String::new(); b],
        distributions: vec![Vec::new(); b],
        ..Default::default()
    };
    let start = Instant::now();
    let mut step = stepper.prefill_ids(prompts, config.pad_token_id)?;
    out.prefill_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for n in 0..config.max_new_tokens {
        let rows = step.logits_rows();
        let mut next = vec![config.pad_token_id; b];
        for (i, logits) in rows.iter().enumerate() {
            if stepper.finished()[i] {
                continue;
            }
            let token = if config.return_distributions {
                let probs = sampler.distribution(logits);
                let t = if config.sampling.is_greedy() {
                    super::sampling::argmax(logits) as u32
                } else {
                    sampler.draw(&probs)
                };
                out.distributions[i].push(probs);
                t
            } else {
                sampler.sample(logits)
            };
            out.tokens[i].push(token);
            out.new_tokens += 1;
            next[i] = token;
            if config.eos_token_ids.contains(&token) {
                stepper.finish(i);
            } else if let Some(tok) = tokenizer.filter(|_| !config.stop_strings.is_empty()) {
                let text = decode(tok, &out.tokens[i])?;
                if config
                    .stop_strings
                    .iter()
                    .any(|s| text.contains(s.as_str()))
                {
                    stepper.finish(i);
                }
            }
        }
        if stepper.all_finished() || n + 1 == config.max_new_tokens {
            break;
        }
        step = stepper.step_tokens(&next)?;
    }
    out.decode_seconds = start.elapsed().as_secs_f64();
    if let Some(tok) = tokenizer {
        for (i, tokens) in out.tokens.iter().enumerate() {
            let mut text = decode(tok, tokens)?;
            if let Some(cut) = config
                .stop_strings
                .iter()
                .filter_map(|s| text.find(s.as_str()))
                .min()
            {
                text.truncate(cut);
            }
            out.texts[i] = text;
        }
    }
    Ok(out)
}

fn decode(tokenizer: &Tokenizer, tokens: &[u32]) -> Result<String> {
    tokenizer
        .decode(tokens, true)
        .map_err(|e| CoreError::Tokenizer {
            path: "<tokenizer>".into(),
            message: e.to_string(),
        })
}
