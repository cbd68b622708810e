//! The latent procedures of the workspace written on the stepper: a CODI latent loop, an HRPO
//! probability-weighted thinking state, and entropy-adaptive switching per sequence. Each is checked
//! against a full forward with the same vectors placed at the same positions.

mod common;

use burn::prelude::*;
use burn::tensor::activation::softmax;
use common::*;
use latent_core::infer::sampling::{entropy, softmax as host_softmax};
use latent_core::infer::{StepInput, Stepper};
use latent_core::LmInput;

/// A full forward of `prompt` followed by `vectors` `[1, n, hidden]` as inputs: logits of the last position.
fn full_with_vectors(
    model: &latent_core::CausalLm<B>,
    prompt: &[i64],
    vectors: Tensor<B, 3>,
) -> HostTensor {
    let n = vectors.dims()[1];
    let s = prompt.len() + n;
    let h = model.config().hidden_size;
    let mut ids = prompt.to_vec();
    ids.extend(std::iter::repeat_n(0, n));
    let embeds = Tensor::<B, 3>::zeros([1, prompt.len(), h], &Default::default());
    let embeds = Tensor::cat(vec![embeds, vectors], 1);
    let replace: Vec<bool> = (0..s).map(|i| i >= prompt.len()).collect();
    let replace =
        Tensor::<B, 2, Bool>::from_data(TensorData::new(replace, [1, s]), &Default::default());
    let logits = model
        .forward(LmInput::mixed(ids_tensor(&[ids]), embeds, replace))
        .unwrap()
        .logits;
    host(logits.slice([0..1, s - 1..s]))
}

use latent_core::hf::safetensors::HostTensor;

#[test]
fn codi_latent_loop_feeds_last_hidden_states() {
    let model = load_model("gpt2");
    let prompt = [5i64, 17, 42, 8];
    let mut stepper = Stepper::new(&model, 1, 8);
    let mut out = stepper
        .prefill_ids(&[prompt.iter().map(|&t| t as u32).collect()], 0)
        .unwrap();
    let mut thoughts = Vec::new();
    for _ in 0..3 {
        let thought = out.hidden.clone(); // [1, hidden]; CODI would project it first
        thoughts.push(thought.clone().unsqueeze_dim::<3>(1));
        out = stepper.step_vectors(thought).unwrap();
    }
    assert_eq!(stepper.cache().len(), prompt.len() + 3);
    let full = full_with_vectors(&model, &prompt, Tensor::cat(thoughts, 1));
    let diff = max_abs_diff(&host(out.logits.unsqueeze_dim::<3>(1)), &full);
    assert!(
        diff <= TOL,
        "latent loop differs from the full forward by {diff}"
    );
}

#[test]
fn hrpo_probability_weighted_thinking_state() {
    let model = load_model("qwen2");
    let prompt = [11i64, 3, 57];
    let mut stepper = Stepper::new(&model, 1, 8);
    let out = stepper
        .prefill_ids(&[prompt.iter().map(|&t| t as u32).collect()], 0)
        .unwrap();
    // Thinking state: the token distribution (temperature 0.9) averaged over the embedding table.
    let probs = softmax(out.logits.clone() / 0.9, 1); // [1, vocab]
    let thinking = probs.matmul(model.embed_tokens.weight.val()); // [1, hidden]
    let next = stepper.step_vectors(thinking.clone()).unwrap();
    let full = full_with_vectors(&model, &prompt, thinking.unsqueeze_dim::<3>(1));
    let diff = max_abs_diff(&host(next.logits.unsqueeze_dim::<3>(1)), &full);
    assert!(diff <= TOL, "thinking state step differs by {diff}");
}

#[test]
fn entropy_adaptive_switching_chooses_per_sequence() {
    let model = load_model("llama");
    let prompts: Vec<Vec<u32>> = vec![vec![5, 17, 42], vec![64, 12, 88, 31]];
    let mut stepper = Stepper::new(&model, 2, 8);
    let out = stepper.prefill_ids(&prompts, 0).unwrap();
    let entropies: Vec<f32> = out
        .logits_rows()
        .iter()
        .map(|l| entropy(&host_softmax(l)))
        .collect();
    // A threshold between the two entropies: the more certain sequence goes latent.
    let threshold = (entropies[0] + entropies[1]) / 2.0;
    let greedy = out.greedy_tokens();
    let inputs: Vec<StepInput<B>> = (0..2)
        .map(|i| {
            if entropies[i] < threshold {
                StepInput::Vector(out.hidden.clone().narrow(0, i, 1).squeeze_dim::<1>(0))
            } else {
                StepInput::Token(greedy[i])
            }
        })
        .collect();
    let latent = inputs
        .iter()
        .filter(|i| matches!(i, StepInput::Vector(_)))
        .count();
    assert_eq!(latent, 1, "entropies {entropies:?} should split the batch");
    let step = stepper.step(&inputs).unwrap();
    // Each row equals that sequence run alone with the same input.
    for (i, input) in inputs.iter().enumerate() {
        let mut alone = Stepper::new(&model, 1, 8);
        alone.prefill_ids(&prompts[i..i + 1], 0).unwrap();
        let single = alone.step(std::slice::from_ref(input)).unwrap();
        let row = host(step.logits.clone().narrow(0, i, 1).unsqueeze_dim::<3>(1));
        let diff = max_abs_diff(&row, &host(single.logits.unsqueeze_dim::<3>(1)));
        assert!(diff <= TOL, "row {i} differs from its solo run by {diff}");
    }
}
