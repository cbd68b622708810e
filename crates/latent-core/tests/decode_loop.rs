//! The one decoding loop: every kind of input a policy can ask for, per-row stops, compaction of
//! finished rows (which must not change any row's result), and per-row seeds (a row's samples do
//! not depend on its batch).

mod common;

use burn::prelude::*;
use common::*;
use latent_core::infer::{
    decode, generate, DecodeConfig, DecodePolicy, GenerateConfig, Next, NextInputs, SamplingConfig,
    StepView, Stepper, StopReason,
};

/// Row-dependent actions that exercise every [`Next`]: row 0 thinks twice then writes, row 1 feeds
/// a control token then writes its inputs mixed with the hidden state, row 2 writes, row 3 writes
/// and stops itself after three tokens. Records every logits row it sees.
struct Mixed {
    seen: Vec<Vec<Vec<f32>>>,
}

impl<BK: Backend> DecodePolicy<BK> for Mixed {
    fn next(&mut self, view: &mut StepView<'_, BK>) -> latent_core::Result<NextInputs<BK>> {
        let step = view.step();
        let mut actions = Vec::new();
        for i in 0..view.len() {
            let row = view.row(i);
            self.seen[row].push(view.logits_row(i).to_vec());
            let token = view.argmax(i);
            actions.push(match row {
                0 if step < 2 => Next::Thought,
                1 if step == 0 => Next::Feed(9),
                1 => Next::WriteAs(token),
                3 if view.written(i).len() == 3 => Next::Stop,
                _ => Next::Write(token),
            });
        }
        // The hidden state scaled down, as a stand-in for a projection.
        Ok(NextInputs::vectors(actions, view.hidden() * 0.5))
    }
}

fn run(compact: bool, eos: Vec<u32>) -> (latent_core::infer::Decoded, Vec<Vec<Vec<f32>>>) {
    let model = load_model("qwen2");
    let prompts: Vec<Vec<u32>> = vec![vec![5, 17, 42], vec![8, 91], vec![64, 12, 88, 31], vec![3]];
    let mut stepper = Stepper::new(&model, prompts.len(), 4);
    let first = stepper.prefill_ids(&prompts, 0).unwrap();
    let mut policy = Mixed {
        seen: vec![Vec::new(); prompts.len()],
    };
    let config = DecodeConfig {
        max_new_tokens: 7,
        eos_token_ids: eos,
        compact,
        ..Default::default()
    };
    let out = decode(stepper, first, &mut policy, &config, None).unwrap();
    (out, policy.seen)
}

#[test]
fn compaction_does_not_change_results() {
    let (probe, _) = run(true, vec![]);
    // Make the second token of row 2 its EOS, so rows end at different steps.
    let eos = vec![probe.tokens[2][1]];
    let (a, seen_a) = run(true, eos.clone());
    let (b, seen_b) = run(false, eos.clone());
    assert_eq!(a.tokens, b.tokens);
    assert_eq!(a.stops, b.stops);
    assert_eq!(a.stops[3], StopReason::Policy);
    assert_eq!(a.tokens[3].len(), 3);
    assert_eq!(a.stops[2], StopReason::Eos);
    assert_eq!(a.tokens[2].last(), eos.first());
    assert!(a.tokens[0].len() <= 7 && a.stops[0] != StopReason::Policy);
    for (row, (x, y)) in seen_a.iter().zip(&seen_b).enumerate() {
        assert_eq!(x.len(), y.len(), "row {row}: steps seen");
        for (step, (p, q)) in x.iter().zip(y).enumerate() {
            let diff = p
                .iter()
                .zip(q)
                .map(|(u, v)| (u - v).abs())
                .fold(0.0, f32::max);
            assert!(
                diff <= 1e-5,
                "row {row} step {step}: logits differ by {diff}"
            );
        }
    }
}

#[test]
fn each_row_equals_the_same_row_decoded_alone() {
    let model = load_model("qwen2");
    let prompts: Vec<Vec<u32>> = vec![vec![5, 17, 42], vec![8, 91], vec![64, 12, 88, 31]];
    let config = |seed| GenerateConfig {
        max_new_tokens: 10,
        sampling: SamplingConfig {
            temperature: 1.0,
            top_k: 30,
            top_p: 0.95,
            seed,
        },
        ..Default::default()
    };
    let batch = generate(&model, None, &prompts, &config(21)).unwrap();
    for (i, prompt) in prompts.iter().enumerate() {
        let alone = generate(
            &model,
            None,
            std::slice::from_ref(prompt),
            &config(21 + i as u64),
        )
        .unwrap();
        assert_eq!(alone.tokens[0], batch.tokens[i], "row {i}");
    }
    assert_ne!(
        batch.tokens[0],
        generate(&model, None, &prompts[..1], &config(22))
            .unwrap()
            .tokens[0],
        "the seed matters"
    );
}

#[test]
fn stop_strings_and_budget_end_rows() {
    let model = load_model("tiny-chat");
    let tokenizer =
        latent_core::hf::tokenizer::load_tokenizer(fixture_dir("tiny-chat").join("tokenizer.json"))
            .unwrap();
    let prompts: Vec<Vec<u32>> = vec![vec![316, 266, 303], vec![345, 223]];
    let plain = generate(
        &model,
        Some(&tokenizer),
        &prompts,
        &GenerateConfig {
            max_new_tokens: 6,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(plain.tokens.iter().all(|t| t.len() == 6), "budget");
    // A stop string taken from row 0's third token ends it there (text cut before it).
    let piece = tokenizer.decode(&plain.tokens[0][2..3], true).unwrap();
    assert!(!piece.trim().is_empty());
    let stopped = generate(
        &model,
        Some(&tokenizer),
        &prompts,
        &GenerateConfig {
            max_new_tokens: 6,
            stop_strings: vec![piece.trim().to_string()],
            ..Default::default()
        },
    )
    .unwrap();
    assert!(stopped.tokens[0].len() <= 3, "{:?}", stopped.tokens[0]);
    assert!(!stopped.texts[0].contains(piece.trim()));
}

/// Greedy writing that raises `stop` once it has seen step `at`.
struct RaiseAt {
    stop: latent_core::train::StopFlag,
    at: usize,
    steps: usize,
}

impl<BK: Backend> DecodePolicy<BK> for RaiseAt {
    fn next(&mut self, view: &mut StepView<'_, BK>) -> latent_core::Result<NextInputs<BK>> {
        self.steps += 1;
        if view.step() == self.at {
            self.stop.request();
        }
        let actions = (0..view.len())
            .map(|i| Next::Write(view.argmax(i)))
            .collect();
        Ok(NextInputs::tokens(actions))
    }
}

#[test]
fn a_stop_request_ends_decoding_at_the_next_step() {
    let model = load_model("qwen2");
    let prompts: Vec<Vec<u32>> = vec![vec![5, 17, 42], vec![8, 91]];
    let stop = latent_core::train::StopFlag::new();
    let mut stepper = Stepper::new(&model, prompts.len(), 64);
    let first = stepper.prefill_ids(&prompts, 0).unwrap();
    let mut policy = RaiseAt {
        stop: stop.clone(),
        at: 2,
        steps: 0,
    };
    let config = DecodeConfig {
        max_new_tokens: 40,
        stop: Some(stop),
        ..Default::default()
    };
    let err = decode(stepper, first, &mut policy, &config, None).unwrap_err();
    assert!(
        matches!(err, latent_core::CoreError::StopRequested { .. }),
        "{err}"
    );
    assert_eq!(policy.steps, 3, "steps 0, 1, 2 ran; none after the request");
}
