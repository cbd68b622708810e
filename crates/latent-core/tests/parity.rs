//! Parity with Hugging Face `transformers` on the committed fixtures of every family:
//! full forward, a left-padded batch, and embeddings fed in place of ids.

mod common;

use burn::prelude::*;
use common::*;
use latent_core::LmInput;

const FAMILIES: [&str; 4] = ["llama", "qwen2", "qwen3", "gpt2"];

fn check_full_forward(name: &str) {
    let model = load_model(name);
    let expected = expected(name);
    let ids = ids_tensor(&inputs(name).single);
    let out = model
        .forward(LmInput::ids(ids).output_hidden_states(true))
        .unwrap();
    let layers = model.config().num_hidden_layers;
    assert_eq!(out.hidden_states.len(), layers + 1);
    let diff = max_abs_diff(
        &host(out.logits),
        &expected_tensor(&expected, "single.logits"),
    );
    assert!(diff <= TOL, "{name}: logits differ by {diff}");
    for (i, h) in out.hidden_states.into_iter().enumerate() {
        let diff = max_abs_diff(
            &host(h),
            &expected_tensor(&expected, &format!("single.hidden_states.{i}")),
        );
        assert!(diff <= TOL, "{name}: hidden state {i} differs by {diff}");
    }
    let diff = max_abs_diff(
        &host(out.last_hidden),
        &expected_tensor(&expected, &format!("single.hidden_states.{layers}")),
    );
    assert!(diff <= TOL, "{name}: last hidden differs by {diff}");
}

fn check_padded_batch(name: &str) {
    let model = load_model(name);
    let expected = expected(name);
    let inputs = inputs(name);
    let mask = ids_tensor(&inputs.batch_mask);
    let out = model
        .forward(
            LmInput::ids(ids_tensor(&inputs.batch_ids))
                .attention_mask(mask)
                .output_hidden_states(true),
        )
        .unwrap();
    let logits = host(out.logits);
    let reference = expected_tensor(&expected, "batch.logits");
    let width = inputs.batch_ids[0].len();
    for (b, row_mask) in inputs.batch_mask.iter().enumerate() {
        let start = row_mask.iter().position(|&m| m == 1).unwrap();
        let diff = max_abs_diff(
            &select(&logits, b, start..width),
            &select(&reference, b, start..width),
        );
        assert!(diff <= TOL, "{name}: batch row {b} logits differ by {diff}");
        for (i, h) in out.hidden_states.iter().enumerate() {
            let h = host(h.clone());
            let r = expected_tensor(&expected, &format!("batch.hidden_states.{i}"));
            let diff = max_abs_diff(&select(&h, b, start..width), &select(&r, b, start..width));
            assert!(
                diff <= TOL,
                "{name}: batch row {b} hidden state {i} differs by {diff}"
            );
        }
        // The same sequence run alone, unpadded, gives the same logits.
        let alone = vec![inputs.batch_ids[b][start..].to_vec()];
        let single = host(
            model
                .forward(LmInput::ids(ids_tensor(&alone)))
                .unwrap()
                .logits,
        );
        let diff = max_abs_diff(&single, &select(&logits, b, start..width));
        assert!(
            diff <= TOL,
            "{name}: row {b} padded vs unpadded differ by {diff}"
        );
    }
}

fn check_embedding_input(name: &str) {
    let model = load_model(name);
    let ids = ids_tensor(&inputs(name).single);
    let from_ids = host(model.forward(LmInput::ids(ids.clone())).unwrap().logits);
    let embeds = model.embed(ids.clone());
    let from_embeds = host(
        model
            .forward(LmInput::embeds(embeds.clone()))
            .unwrap()
            .logits,
    );
    let diff = max_abs_diff(&from_ids, &from_embeds);
    assert!(diff <= TOL, "{name}: embeddings-as-input differ by {diff}");

    // Replace positions 2 and 4 by their own embeddings: no change.
    let s = ids.dims()[1];
    let replace: Vec<bool> = (0..s).map(|i| i == 2 || i == 4).collect();
    let replace =
        Tensor::<B, 2, Bool>::from_data(TensorData::new(replace, [1, s]), &Default::default());
    let mixed = host(
        model
            .forward(LmInput::mixed(ids.clone(), embeds.clone(), replace.clone()))
            .unwrap()
            .logits,
    );
    let diff = max_abs_diff(&from_ids, &mixed);
    assert!(diff <= TOL, "{name}: mixed input differs by {diff}");

    // Replacing with a different vector changes exactly the positions from 2 on.
    let other = embeds.clone() * 0.0 + 0.3;
    let changed = host(
        model
            .forward(LmInput::mixed(ids, other, replace))
            .unwrap()
            .logits,
    );
    let unchanged = max_abs_diff(&select(&changed, 0, 0..2), &select(&from_ids, 0, 0..2));
    assert!(
        unchanged <= TOL,
        "{name}: positions before the latent changed by {unchanged}"
    );
    assert!(max_abs_diff(&select(&changed, 0, 2..3), &select(&from_ids, 0, 2..3)) > 1e-3);
}

macro_rules! family_tests {
    ($($family:ident),*) => {$(
        mod $family {
            #[test]
            fn full_forward_matches_transformers() {
                super::check_full_forward(stringify!($family));
            }
            #[test]
            fn padded_batch_matches_transformers_and_unpadded() {
                super::check_padded_batch(stringify!($family));
            }
            #[test]
            fn embedding_input_matches_ids() {
                super::check_embedding_input(stringify!($family));
            }
        }
    )*};
}

family_tests!(llama, qwen2, qwen3, gpt2);

#[test]
fn every_family_has_a_fixture() {
    for name in FAMILIES {
        assert!(
            fixture_dir(name).join("model.safetensors").is_file(),
            "{name}"
        );
    }
}
