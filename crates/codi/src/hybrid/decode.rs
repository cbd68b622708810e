//! Hybrid decoding: every sequence of a batch has its own [`Controller`] and mode; each step the
//! [`Stepper`] takes, per sequence, a token (text, `<bot>` or `<eot>`) or a continuous thought (the
//! projected hidden state of its previous position). The question is encoded without `<bot>`; the
//! controller inserts it. Accuracy is the last number of the written text, as in [`crate::eval`].

use std::time::Instant;

use burn::prelude::*;
use latent_core::infer::sampling::{argmax, entropy, softmax};
use latent_core::infer::{StepInput, Stepper};
use serde::Serialize;
use tokenizers::Tokenizer;

use super::controller::{Action, BaselineMode, Controller, ControllerConfig};
use crate::data::Tokenized;
use crate::eval::{decode_text, AnswerRecord, EvalConfig};
use crate::model::CodiModel;
use crate::{CodiError, Result};

/// One decoded question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HybridRecord {
    /// Question, output and score (`tokens` excludes `<bot>` and `<eot>`).
    #[serde(flatten)]
    pub answer: AnswerRecord,
    /// Mode switches.
    pub switches: usize,
    /// The mode trace (see [`Action::symbol`]).
    pub trace: String,
}

/// Results of one mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HybridSummary {
    /// The policy.
    pub mode: BaselineMode,
    /// Its settings.
    pub controller: ControllerConfig,
    /// Questions.
    pub examples: usize,
    /// `correct / examples`.
    pub accuracy: f64,
    /// Mean text tokens per question.
    pub mean_tokens: f64,
    /// Mean thoughts per question.
    pub mean_latent_steps: f64,
    /// Mean switches per question.
    pub mean_switches: f64,
    /// Wall time of the whole evaluation.
    pub seconds: f64,
    /// Every question.
    pub records: Vec<HybridRecord>,
}

/// Decodes `examples` with one controller per question.
pub fn evaluate_hybrid<B: Backend>(
    model: &CodiModel<B>,
    tokenizer: &Tokenizer,
    examples: &[Tokenized],
    eval: &EvalConfig,
    controller: &ControllerConfig,
    mut progress: impl FnMut(usize),
) -> Result<HybridSummary> {
    if examples.is_empty() {
        return Err(CodiError::Empty("the evaluation set".into()));
    }
    let start = Instant::now();
    let per_batch = eval.batch_size.max(1);
    let mut records = Vec::with_capacity(examples.len());
    for (i, chunk) in examples.chunks(per_batch).enumerate() {
        let controllers = (0..chunk.len())
            .map(|r| Controller::new(*controller, (i * per_batch + r) as u64))
            .collect();
        records.extend(decode_batch(
            model,
            tokenizer,
            chunk,
            eval.max_new_tokens,
            controllers,
        )?);
        progress(records.len());
    }
    let n = records.len() as f64;
    let mean = |f: fn(&HybridRecord) -> usize| records.iter().map(f).sum::<usize>() as f64 / n;
    Ok(HybridSummary {
        mode: controller.mode,
        controller: *controller,
        examples: records.len(),
        accuracy: records.iter().filter(|r| r.answer.correct).count() as f64 / n,
        mean_tokens: mean(|r| r.answer.tokens),
        mean_latent_steps: mean(|r| r.answer.latent_steps),
        mean_switches: mean(|r| r.switches),
        seconds: start.elapsed().as_secs_f64(),
        records,
    })
}

/// Greedy hybrid decoding of one batch; a sequence stops at EOS or after `max_new_tokens` text
/// tokens.
fn decode_batch<B: Backend>(
    model: &CodiModel<B>,
    tokenizer: &Tokenizer,
    chunk: &[Tokenized],
    max_new_tokens: usize,
    mut controllers: Vec<Controller>,
) -> Result<Vec<HybridRecord>> {
    let t = model.tokens;
    let b = chunk.len();
    let prompts: Vec<Vec<u32>> = chunk.iter().map(|e| e.question.clone()).collect();
    let width = prompts.iter().map(Vec::len).max().unwrap_or(1);
    let mut stepper = Stepper::new(&model.lm, b, width + 2 * max_new_tokens);
    let mut out = stepper.prefill_ids(&prompts, t.pad)?;
    let mut written: Vec<Vec<u32>> = vec![Vec::new(); b];
    let mut thoughts = vec![0usize; b];
    loop {
        let rows = out.logits_rows();
        let mut actions = vec![None; b];
        for (r, row) in rows.iter().enumerate() {
            if stepper.finished()[r] {
                continue;
            }
            let base = &row[..t.base_vocab];
            let action = controllers[r].decide(entropy(&softmax(base)));
            if action == Action::Token {
                let token = argmax(base) as u32;
                if token == t.eos || written[r].len() >= max_new_tokens {
                    stepper.finish(r);
                    continue;
                }
                written[r].push(token);
                controllers[r].observe_text(&decode_text(tokenizer, &written[r])?);
            }
            if action == Action::Thought {
                thoughts[r] += 1;
            }
            actions[r] = Some(action);
        }
        if stepper.all_finished() {
            break;
        }
        let projected = actions
            .contains(&Some(Action::Thought))
            .then(|| model.thought(out.hidden.clone()));
        let inputs: Vec<StepInput<B>> = actions
            .iter()
            .enumerate()
            .map(|(r, action)| match action {
                Some(Action::Token) => StepInput::Token(*written[r].last().expect("written")),
                Some(Action::Bot) => StepInput::Token(t.bot),
                Some(Action::Eot) => StepInput::Token(t.eot),
                Some(Action::Thought) => {
                    let h = projected.as_ref().expect("projected");
                    StepInput::Vector(h.clone().narrow(0, r, 1).reshape([h.dims()[1]]))
                }
                None => StepInput::Token(t.pad),
            })
            .collect();
        out = stepper.step(&inputs)?;
    }
    chunk
        .iter()
        .zip(written)
        .zip(controllers)
        .zip(thoughts)
        .map(|(((e, ids), c), latent_steps)| {
            Ok(HybridRecord {
                answer: AnswerRecord::decode(tokenizer, e, &ids, latent_steps)?,
                switches: c.switch_count(),
                trace: c.trace().to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::evaluate;
    use crate::Task;

    /// The all-latent mode is plain CODI decoding and the all-explicit mode is CoT decoding: both
    /// must write exactly what [`evaluate`] writes, row for row, in mixed-length batches.
    #[test]
    fn baseline_modes_match_plain_evaluation() {
        let (model, tokenizer, examples) = crate::hybrid::testing::tiny_setup();
        let eval = EvalConfig {
            batch_size: 3,
            max_new_tokens: 12,
            num_latent: 3,
            ..EvalConfig::default()
        };
        for (mode, task) in [
            (BaselineMode::Latent, Task::Codi),
            (BaselineMode::Explicit, Task::CotSft),
        ] {
            let plain = evaluate(&model, task, &tokenizer, &examples, &eval, |_| {}).unwrap();
            let controller = ControllerConfig {
                mode,
                num_latent: 3,
                ..ControllerConfig::default()
            };
            let hybrid =
                evaluate_hybrid(&model, &tokenizer, &examples, &eval, &controller, |_| {}).unwrap();
            for (p, h) in plain.records.iter().zip(&hybrid.records) {
                assert_eq!(p.answer.output, h.answer.output, "{mode:?}");
                assert_eq!(p.answer.latent_steps, h.answer.latent_steps, "{mode:?}");
            }
        }
        // Adaptive and random decode too, and their traces account for every step.
        for mode in [BaselineMode::Adaptive, BaselineMode::Random] {
            let controller = ControllerConfig {
                mode,
                window_e_to_l: 1,
                ..ControllerConfig::default()
            };
            let s =
                evaluate_hybrid(&model, &tokenizer, &examples, &eval, &controller, |_| {}).unwrap();
            for r in &s.records {
                let count = |c: char| r.trace.chars().filter(|&x| x == c).count();
                assert_eq!(count('z'), r.answer.latent_steps);
                assert!(count('e') >= r.answer.tokens && r.answer.tokens <= 12);
                assert!(count('[') >= count(']') && count('[') <= count(']') + 1);
            }
        }
    }
}
