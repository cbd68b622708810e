//! Generation through the stepper: greedy output equals transformers' `generate` token for token
//! (single prompt and a left-padded batch), sampling is reproducible per seed, and per-sequence
//! token/vector steps in one batch equal separate runs.

mod common;

use common::*;
use latent_core::infer::{generate, GenerateConfig, SamplingConfig, StepInput, Stepper};

fn fixture_json(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture_dir(name).join("inputs.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn rows(v: &serde_json::Value) -> Vec<Vec<u32>> {
    serde_json::from_value(v.clone()).unwrap()
}

fn unpadded(ids: &[Vec<i64>], mask: &[Vec<i64>]) -> Vec<Vec<u32>> {
    ids.iter()
        .zip(mask)
        .map(|(r, m)| {
            r.iter()
                .zip(m)
                .filter(|(_, &m)| m == 1)
                .map(|(&t, _)| t as u32)
                .collect()
        })
        .collect()
}

#[test]
fn greedy_matches_transformers_generate() {
    for name in ["llama", "qwen2", "qwen3", "gpt2"] {
        let model = load_model(name);
        let json = fixture_json(name);
        let n = json["greedy_new_tokens"].as_u64().unwrap() as usize;
        let config = GenerateConfig {
            max_new_tokens: n,
            ..Default::default()
        };
        let single = rows(&json["single"]);
        let got = generate(&model, None, &single, &config).unwrap();
        assert_eq!(
            got.tokens,
            rows(&json["greedy_single"]),
            "{name}: single prompt"
        );
        let inputs = inputs(name);
        let batch = unpadded(&inputs.batch_ids, &inputs.batch_mask);
        let got = generate(&model, None, &batch, &config).unwrap();
        assert_eq!(
            got.tokens,
            rows(&json["greedy_batch"]),
            "{name}: left-padded batch"
        );
        assert_eq!(got.new_tokens, 2 * n);
    }
}

#[test]
fn sampling_is_reproducible_per_seed_and_stops_on_eos() {
    let model = load_model("qwen2");
    let prompts = vec![vec![5u32, 17, 42], vec![8, 91]];
    let config = |seed| GenerateConfig {
        max_new_tokens: 16,
        sampling: SamplingConfig {
            temperature: 1.0,
            top_k: 20,
            top_p: 0.9,
            seed,
        },
        return_distributions: true,
        ..Default::default()
    };
    let a = generate(&model, None, &prompts, &config(3)).unwrap();
    let b = generate(&model, None, &prompts, &config(3)).unwrap();
    let c = generate(&model, None, &prompts, &config(4)).unwrap();
    assert_eq!(a.tokens, b.tokens);
    assert_ne!(a.tokens, c.tokens);
    for (tokens, dists) in a.tokens.iter().zip(&a.distributions) {
        assert_eq!(tokens.len(), dists.len());
        for (t, d) in tokens.iter().zip(dists) {
            assert!(
                d[*t as usize] > 0.0,
                "a token outside its distribution's support"
            );
            assert!(
                d.iter().filter(|&&p| p > 0.0).count() <= 20,
                "top-k not applied"
            );
        }
    }
    // Stop at the first sampled token of sequence 0: it becomes the EOS id.
    let eos = a.tokens[0][0];
    let stopped = generate(
        &model,
        None,
        &prompts,
        &GenerateConfig {
            eos_token_ids: vec![eos],
            ..config(3)
        },
    )
    .unwrap();
    assert_eq!(stopped.tokens[0], vec![eos]);
}

#[test]
fn mixed_token_and_vector_steps_equal_separate_runs() {
    let model = load_model("llama");
    let prompts = vec![vec![5u32, 17, 42, 8], vec![64, 12]];
    let mut both = Stepper::new(&model, 2, 4);
    let out = both.prefill_ids(&prompts, 0).unwrap();
    let thought = out.hidden.clone().narrow(0, 0, 1).squeeze_dim::<1>(0);
    let token = out.greedy_tokens()[1];
    let out = both
        .step(&[StepInput::Vector(thought.clone()), StepInput::Token(token)])
        .unwrap();
    let mixed = host(out.logits.unsqueeze_dim::<3>(1));

    let mut first = Stepper::new(&model, 1, 8);
    first.prefill_ids(&prompts[..1], 0).unwrap();
    let a = first.step_vectors(thought.unsqueeze_dim(0)).unwrap();
    let mut second = Stepper::new(&model, 1, 8);
    second.prefill_ids(&prompts[1..], 0).unwrap();
    let b = second.step_tokens(&[token]).unwrap();
    assert!(
        max_abs_diff(
            &select(&mixed, 0, 0..1),
            &host(a.logits.unsqueeze_dim::<3>(1))
        ) <= TOL
    );
    assert!(
        max_abs_diff(
            &select(&mixed, 1, 0..1),
            &host(b.logits.unsqueeze_dim::<3>(1))
        ) <= TOL
    );

    // A finished sequence's later steps are padding: the other sequence is unaffected.
    both.finish(0);
    let next = both.step_tokens(&[1, 7]).unwrap();
    let alone = second.step_tokens(&[7]).unwrap();
    let diff = max_abs_diff(
        &select(&host(next.logits.unsqueeze_dim::<3>(1)), 1, 0..1),
        &host(alone.logits.unsqueeze_dim::<3>(1)),
    );
    assert!(
        diff <= TOL,
        "finished row leaked into its neighbour: {diff}"
    );
}
