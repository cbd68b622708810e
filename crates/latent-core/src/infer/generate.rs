//! `generate`: batched sampling, a policy of the decoding loop ([`decode`]) with EOS ids, stop
//! strings, a token budget and optional per-step distributions.

use std::time::Instant;

use burn::prelude::*;
use tokenizers::Tokenizer;

use super::decode::{decode, decode_ids, DecodeConfig, DecodePolicy, Next, NextInputs, StepView};
use super::sampling::SamplingConfig;
use super::stepper::Stepper;
use crate::{CausalLm, Result};

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

/// Generates continuations of token `prompts` (left-padded into one batch). Row `i` samples with
/// seed `sampling.seed + i`, so a prompt's text does not depend on the others in the batch.
pub fn generate<B: Backend>(
    model: &CausalLm<B>,
    tokenizer: Option<&Tokenizer>,
    prompts: &[Vec<u32>],
    config: &GenerateConfig,
) -> Result<Generation> {
    let b = prompts.len();
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let mut stepper = Stepper::new(model, b, longest + config.max_new_tokens);
    let start = Instant::now();
    let first = stepper.prefill_ids(prompts, config.pad_token_id)?;
    let prefill_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut policy = SampleTokens {
        distributions: config.return_distributions.then(|| vec![Vec::new(); b]),
    };
    let loop_config = DecodeConfig {
        max_new_tokens: config.max_new_tokens,
        eos_token_ids: config.eos_token_ids.clone(),
        stop_strings: config.stop_strings.clone(),
        sampling: config.sampling.clone(),
        compact: true,
        stop: None,
    };
    let decoded = decode(stepper, first, &mut policy, &loop_config, tokenizer)?;
    let decode_seconds = start.elapsed().as_secs_f64();
    let texts = match tokenizer {
        Some(tok) => decoded
            .tokens
            .iter()
            .map(|tokens| {
                let mut text = decode_ids(tok, tokens, true)?;
                if let Some(cut) = config
                    .stop_strings
                    .iter()
                    .filter_map(|s| text.find(s.as_str()))
                    .min()
                {
                    text.truncate(cut);
                }
                Ok(text)
            })
            .collect::<Result<_>>()?,
        None => vec![String::new(); b],
    };
    Ok(Generation {
        new_tokens: decoded.tokens.iter().map(Vec::len).sum(),
        tokens: decoded.tokens,
        texts,
        distributions: policy.distributions.unwrap_or_else(|| vec![Vec::new(); b]),
        prefill_seconds,
        decode_seconds,
    })
}

/// Writes the token the loop's sampler draws, keeping its distribution if asked.
struct SampleTokens {
    distributions: Option<Vec<Vec<Vec<f32>>>>,
}

impl<B: Backend> DecodePolicy<B> for SampleTokens {
    fn next(&mut self, view: &mut StepView<'_, B>) -> Result<NextInputs<B>> {
        let actions = (0..view.len())
            .map(|i| match &mut self.distributions {
                Some(all) => {
                    let draw = view.sample(i);
                    all[view.row(i)].push(draw.distribution.probs);
                    Next::Write(draw.token)
                }
                None => Next::Write(view.sample_token(i)),
            })
            .collect();
        Ok(NextInputs::tokens(actions))
    }
}
