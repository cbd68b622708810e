//! Hybrid decoding: every sequence of a batch has its own [`Controller`] and mode; each step, a
//! policy of the decoding loop ([`decode`]) gives per sequence a token (text, `<bot>` or `<eot>`) or
//! a continuous thought (the projected hidden state of its previous position). The question is encoded without `<bot>`; the
//! controller inserts it. Accuracy is the last number of the written text, as in [`crate::eval`].

use std::time::Instant;

use burn::prelude::*;
use latent_core::infer::sampling::{argmax, entropy, probability_of, softmax};
use latent_core::infer::{decode, DecodeConfig, DecodePolicy, Next, NextInputs, StepView, Stepper};
use serde::Serialize;
use tokenizers::Tokenizer;

use super::controller::{Action, BaselineMode, Controller, ControllerConfig, Signals};
use crate::data::Tokenized;
use crate::eval::{AnswerRecord, EvalConfig};
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

/// Decodes `examples` with one controller per question; `plans` (one per example) are the
/// per-step latent flags of the planned mode (required by it, ignored by the others).
pub fn evaluate_hybrid<B: Backend>(
    model: &CodiModel<B>,
    tokenizer: &Tokenizer,
    examples: &[Tokenized],
    eval: &EvalConfig,
    controller: &ControllerConfig,
    plans: Option<&[Vec<bool>]>,
    mut progress: impl FnMut(usize),
) -> Result<HybridSummary> {
    if examples.is_empty() {
        return Err(CodiError::Empty("the evaluation set".into()));
    }
    if controller.mode == BaselineMode::Planned && plans.map(<[_]>::len) != Some(examples.len()) {
        return Err(CodiError::Empty(format!(
            "the plans of the planned mode (one per question: {} questions, {} plans)",
            examples.len(),
            plans.map_or(0, <[_]>::len)
        )));
    }
    let start = Instant::now();
    let per_batch = eval.batch_size.max(1);
    let mut records = Vec::with_capacity(examples.len());
    for (i, chunk) in examples.chunks(per_batch).enumerate() {
        latent_core::train::check_stop(eval.stop.as_ref(), "evaluation")?;
        let controllers = (0..chunk.len())
            .map(|r| {
                let index = i * per_batch + r;
                match plans {
                    Some(p) if controller.mode == BaselineMode::Planned => {
                        Controller::with_plan(*controller, index as u64, p[index].clone())
                    }
                    _ => Controller::new(*controller, index as u64),
                }
            })
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

/// Greedy hybrid decoding of one batch on the decoding loop; a sequence stops at EOS or at its
/// first text token over `max_new_tokens` (thoughts do not count).
fn decode_batch<B: Backend>(
    model: &CodiModel<B>,
    tokenizer: &Tokenizer,
    chunk: &[Tokenized],
    max_new_tokens: usize,
    controllers: Vec<Controller>,
) -> Result<Vec<HybridRecord>> {
    let t = model.tokens;
    let b = chunk.len();
    let prompts: Vec<Vec<u32>> = chunk.iter().map(|e| e.question.clone()).collect();
    let width = prompts.iter().map(Vec::len).max().unwrap_or(1);
    let mut stepper = Stepper::new(&model.lm, b, width + 2 * max_new_tokens);
    let first = stepper.prefill_ids(&prompts, t.pad)?;
    let mut policy = HybridDecode {
        model,
        max_new_tokens,
        controllers,
        thoughts: vec![0; b],
        wrote: vec![false; b],
    };
    let loop_config = DecodeConfig {
        // The policy bounds text tokens itself: thoughts may follow the last one.
        max_new_tokens: usize::MAX,
        eos_token_ids: vec![t.eos],
        ..DecodeConfig::default()
    };
    let decoded = decode(stepper, first, &mut policy, &loop_config, Some(tokenizer))?;
    chunk
        .iter()
        .zip(decoded.tokens)
        .zip(policy.controllers)
        .zip(policy.thoughts)
        .map(|(((e, mut ids), c), latent_steps)| {
            if ids.last() == Some(&t.eos) {
                ids.pop();
            }
            Ok(HybridRecord {
                answer: AnswerRecord::decode(tokenizer, e, &ids, latent_steps)?,
                switches: c.switch_count(),
                trace: c.trace().to_string(),
            })
        })
        .collect()
}

/// One [`Controller`] per row chooses text, `<bot>`/`<eot>` or a thought (the projected hidden
/// state of the previous position) from the entropy of the base-vocabulary distribution.
struct HybridDecode<'a, B: Backend> {
    model: &'a CodiModel<B>,
    max_new_tokens: usize,
    controllers: Vec<Controller>,
    thoughts: Vec<usize>,
    /// The row wrote a text token last step: its controller has not seen the new text yet.
    wrote: Vec<bool>,
}

impl<B: Backend> DecodePolicy<B> for HybridDecode<'_, B> {
    fn next(&mut self, view: &mut StepView<'_, B>) -> latent_core::Result<NextInputs<B>> {
        let t = self.model.tokens;
        let mut actions = Vec::with_capacity(view.len());
        for i in 0..view.len() {
            let row = view.row(i);
            if std::mem::take(&mut self.wrote[row]) {
                let text = view.text(i)?.to_string();
                self.controllers[row].observe_text(&text);
            }
            let logits = view.logits_row(i);
            let base = &logits[..t.base_vocab];
            let signals = Signals {
                entropy: entropy(&softmax(base)),
                p_bot: probability_of(logits, t.bot as usize),
            };
            let token = argmax(base) as u32;
            actions.push(match self.controllers[row].decide(signals) {
                Action::Token if token != t.eos && view.written(i).len() >= self.max_new_tokens => {
                    Next::Stop
                }
                Action::Token => {
                    self.wrote[row] = true;
                    Next::Write(token)
                }
                Action::Bot => Next::Feed(t.bot),
                Action::Eot => Next::Feed(t.eot),
                Action::Thought => {
                    self.thoughts[row] += 1;
                    Next::Thought
                }
            });
        }
        if actions.contains(&Next::Thought) {
            let thoughts = self.model.thought(view.hidden());
            return Ok(NextInputs::vectors(actions, thoughts));
        }
        Ok(NextInputs::tokens(actions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::evaluate;
    use crate::hybrid::controller::SwitchRule;
    use crate::Task;

    /// A stop raised during an evaluation ends it before the next batch: the progress callback
    /// raises it after the first batch, and no second batch is decoded (plain and hybrid).
    #[test]
    fn a_stop_ends_an_evaluation_before_its_next_batch() {
        let (model, tokenizer, examples) = crate::hybrid::testing::tiny_setup();
        assert!(examples.len() > 2);
        let stop = latent_core::train::StopFlag::new();
        let eval = EvalConfig {
            batch_size: 2,
            max_new_tokens: 4,
            num_latent: 2,
            stop: Some(stop.clone()),
            ..EvalConfig::default()
        };
        let stopped = |e: &CodiError| {
            matches!(
                e,
                CodiError::Core(latent_core::CoreError::StopRequested { .. })
            )
        };
        let mut done = Vec::new();
        let err = evaluate(&model, Task::Codi, &tokenizer, &examples, &eval, |n| {
            done.push(n);
            stop.request();
        })
        .unwrap_err();
        assert!(stopped(&err), "{err}");
        assert_eq!(done, [2]);
        let controller = ControllerConfig {
            mode: BaselineMode::Latent,
            num_latent: 2,
            ..ControllerConfig::default()
        };
        let err = evaluate_hybrid(
            &model,
            &tokenizer,
            &examples,
            &eval,
            &controller,
            None,
            |_| {},
        )
        .unwrap_err();
        assert!(stopped(&err), "{err}");
    }

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
            let hybrid = evaluate_hybrid(
                &model,
                &tokenizer,
                &examples,
                &eval,
                &controller,
                None,
                |_| {},
            )
            .unwrap();
            for (p, h) in plain.records.iter().zip(&hybrid.records) {
                assert_eq!(p.answer.output, h.answer.output, "{mode:?}");
                assert_eq!(p.answer.latent_steps, h.answer.latent_steps, "{mode:?}");
            }
        }
        // Adaptive, random and planned decode too (both rules), and their traces account for
        // every step.
        let plans = vec![vec![true, false, true]; examples.len()];
        let rules = [
            (BaselineMode::Adaptive, SwitchRule::Entropy),
            (BaselineMode::Random, SwitchRule::Entropy),
            (BaselineMode::Adaptive, SwitchRule::Step),
            (BaselineMode::Random, SwitchRule::Step),
            (BaselineMode::Planned, SwitchRule::Step),
        ];
        for (mode, rule) in rules {
            let controller = ControllerConfig {
                mode,
                rule,
                window_e_to_l: 1,
                latents_per_step: 2,
                bot_threshold: 0.0,
                ..ControllerConfig::default()
            };
            let s = evaluate_hybrid(
                &model,
                &tokenizer,
                &examples,
                &eval,
                &controller,
                Some(&plans),
                |_| {},
            )
            .unwrap();
            if mode == BaselineMode::Planned
                || mode == BaselineMode::Adaptive && rule == SwitchRule::Step
            {
                // Step 0 latent (the plan, or p(<bot>) ≥ 0): the run starts right after the
                // question with one step of thoughts.
                assert!(
                    s.records.iter().all(|r| r.trace.starts_with("[zz")),
                    "{mode:?}"
                );
            }
            for r in &s.records {
                let count = |c: char| r.trace.chars().filter(|&x| x == c).count();
                assert_eq!(count('z'), r.answer.latent_steps);
                assert!(count('e') >= r.answer.tokens && r.answer.tokens <= 12);
                assert!(count('[') >= count(']') && count('[') <= count(']') + 1);
            }
        }
    }
}
