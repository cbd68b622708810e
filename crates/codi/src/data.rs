//! CODI's data preprocessing (reference `train.py`): the CoT is split into steps and its **last step
//! dropped**, examples whose answer does not start with a digit are dropped, so are examples longer
//! than `max_token_num` tokens; the answer text is `"The answer is: " + answer`. Question, CoT and
//! answer are tokenized separately and concatenated, with no template and no separators.

use latent_datasets::answer::GoldAnswer;
use latent_datasets::gsm8k::Gsm8kRecord;
use latent_datasets::icot::IcotRecord;
use serde::Serialize;
use tokenizers::Tokenizer;

use crate::{CodiError, Result};

/// One problem before tokenization.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The question.
    pub question: String,
    /// The CoT steps (equations `<<a*b=c>>`, or sentences for GSM8k-Aug-NL).
    pub steps: Vec<String>,
    /// The answer as written after `####`.
    pub answer: String,
}

impl From<&IcotRecord> for Problem {
    fn from(r: &IcotRecord) -> Self {
        Self {
            question: r.question.clone(),
            steps: r.steps.clone(),
            answer: r.answer.clone(),
        }
    }
}

impl From<&Gsm8kRecord> for Problem {
    fn from(r: &Gsm8kRecord) -> Self {
        Self {
            question: r.question.clone(),
            steps: r.steps.clone(),
            answer: r.answer.text.clone(),
        }
    }
}

/// Preprocessing settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepConfig {
    /// Keep the last CoT step (the reference drops it; keeping it is the paper's ablation).
    pub keep_last_step: bool,
    /// Drop examples with more tokens (question + CoT + answer) than this.
    pub max_token_num: Option<usize>,
    /// Text before the answer number.
    pub answer_prefix: String,
    /// What joins the kept steps (`" "` for equations, `". "` for sentences).
    pub step_separator: String,
    /// Prepend this id (the model's BOS) to every question.
    pub bos: Option<u32>,
}

impl Default for PrepConfig {
    fn default() -> Self {
        Self {
            keep_last_step: false,
            max_token_num: None,
            answer_prefix: "The answer is: ".into(),
            step_separator: " ".into(),
            bos: None,
        }
    }
}

/// One tokenized example.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokenized {
    /// The question as given to the model (trimmed, double spaces collapsed).
    pub question_text: String,
    /// Question ids (BOS first when configured).
    pub question: Vec<u32>,
    /// CoT ids (kept steps).
    pub cot: Vec<u32>,
    /// `"The answer is: X"` ids (no EOS).
    pub answer: Vec<u32>,
    /// Index in `answer` of the token just before the first token holding a digit: the position
    /// CODI distils at (GPT-2: the `:`; Llama: the lone `" "`).
    pub pre_answer: usize,
    /// The gold answer.
    pub gold: GoldAnswer,
}

/// What preprocessing kept and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PrepReport {
    /// Problems seen.
    pub total: usize,
    /// Problems kept.
    pub kept: usize,
    /// Dropped: the answer does not start with a digit (e.g. negative or text answers).
    pub non_digit_answer: usize,
    /// Dropped: longer than `max_token_num`.
    pub too_long: usize,
}

/// A question as CODI's evaluator feeds it: trimmed, double spaces collapsed.
pub fn clean_question(question: &str) -> String {
    let mut q = question.trim().to_string();
    while q.contains("  ") {
        q = q.replace("  ", " ");
    }
    q
}

/// Token ids of `text` without special tokens.
pub fn encode(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    tokenizer
        .encode(text, false)
        .map(|e| e.get_ids().to_vec())
        .map_err(|e| CodiError::Tokenizer(format!("encoding {text:?}: {e}")))
}

/// The index of the token before the first token of `ids` whose text holds a digit.
pub fn pre_answer_index(tokenizer: &Tokenizer, text: &str, ids: &[u32]) -> Result<usize> {
    let tokens: Vec<String> = ids
        .iter()
        .map(|&id| {
            tokenizer
                .decode(&[id], false)
                .unwrap_or_else(|_| tokenizer.id_to_token(id).unwrap_or_default())
        })
        .collect();
    match tokens
        .iter()
        .position(|t| t.chars().any(|c| c.is_ascii_digit()))
    {
        Some(i) if i > 0 => Ok(i - 1),
        _ => Err(CodiError::NoAnswerDigit {
            text: text.to_string(),
            tokens,
        }),
    }
}

/// The CoT steps CODI trains on: all but the last, unless `keep_last_step`.
pub fn kept_steps(steps: &[String], keep_last_step: bool) -> &[String] {
    match (keep_last_step, steps.split_last()) {
        (false, Some((_, kept))) => kept,
        _ => steps,
    }
}

/// Tokenizes `problems` with the reference preprocessing.
pub fn prepare(
    problems: &[Problem],
    tokenizer: &Tokenizer,
    config: &PrepConfig,
) -> Result<(Vec<Tokenized>, PrepReport)> {
    let mut report = PrepReport {
        total: problems.len(),
        ..PrepReport::default()
    };
    let mut out = Vec::with_capacity(problems.len());
    for p in problems {
        let answer = p.answer.trim();
        if !answer.starts_with(|c: char| c.is_ascii_digit()) {
            report.non_digit_answer += 1;
            continue;
        }
        let gold = GoldAnswer::parse(answer)?;
        let steps = kept_steps(&p.steps, config.keep_last_step);
        let question_text = clean_question(&p.question);
        let mut question: Vec<u32> = config.bos.into_iter().collect();
        question.extend(encode(tokenizer, &question_text)?);
        let cot = if steps.is_empty() {
            Vec::new()
        } else {
            encode(tokenizer, &steps.join(&config.step_separator))?
        };
        let answer_text = format!("{}{answer}", config.answer_prefix);
        let answer_ids = encode(tokenizer, &answer_text)?;
        if let Some(max) = config.max_token_num {
            if question.len() + cot.len() + answer_ids.len() > max {
                report.too_long += 1;
                continue;
            }
        }
        let pre_answer = pre_answer_index(tokenizer, &answer_text, &answer_ids)?;
        out.push(Tokenized {
            question_text,
            question,
            cot,
            answer: answer_ids,
            pre_answer,
            gold,
        });
    }
    report.kept = out.len();
    Ok((out, report))
}
