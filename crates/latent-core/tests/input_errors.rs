//! Bad values at the forward contract return an error naming them, never a panic: token ids past
//! the vocabulary, positions past a learned position table (full and cached forward), embeddings of
//! the wrong width (plain and mixed input), an empty batch.

mod common;

use burn::prelude::*;
use burn::tensor::DType;
use common::B;
use latent_core::infer::KvCache;
use latent_core::{CausalLm, CoreError, LmInput, ModelConfig};

/// GPT-2 with 16 learned positions and 50 tokens (random weights).
fn gpt2() -> CausalLm<B> {
    let text = r#"{"model_type": "gpt2", "vocab_size": 50, "n_embd": 32, "n_layer": 2, "n_head": 4,
        "n_positions": 16}"#;
    let config = ModelConfig::from_json_str(text, std::path::Path::new("config.json")).unwrap();
    CausalLm::new(&config, &Default::default())
}

fn ids(rows: &[Vec<i64>]) -> Tensor<B, 2, Int> {
    let (b, s) = (rows.len(), rows.first().map_or(0, Vec::len));
    Tensor::from_data(TensorData::new(rows.concat(), [b, s]), &Default::default())
}

fn invalid(err: CoreError) -> (&'static str, i64, usize, usize) {
    match err {
        CoreError::InvalidInput {
            what,
            value,
            row,
            position,
            ..
        } => (what, value, row, position),
        other => panic!("expected InvalidInput, got {other}"),
    }
}

#[test]
fn token_ids_past_the_vocabulary() {
    let model = gpt2();
    let err = model
        .forward(LmInput::ids(ids(&[vec![1, 2, 3], vec![4, 99999, 5]])))
        .unwrap_err();
    assert_eq!(invalid(err), ("token id", 99999, 1, 1));
    let err = model
        .forward(LmInput::ids(ids(&[vec![-3, 2]])))
        .unwrap_err();
    assert_eq!(invalid(err), ("token id", -3, 0, 0));
    assert!(model.forward(LmInput::ids(ids(&[vec![0, 49]]))).is_ok());
}

#[test]
fn positions_past_the_learned_table() {
    let model = gpt2();
    let long: Vec<i64> = (0..20).map(|i| i % 50).collect();
    let err = model.forward(LmInput::ids(ids(&[long]))).unwrap_err();
    assert_eq!(invalid(err), ("position", 16, 0, 16));
    assert!(model
        .forward(LmInput::ids(ids(&[(0..16).collect()])))
        .is_ok());
    // Through the cache: 15 positions fit, the 17th step does not.
    let mut cache = KvCache::new(model.config(), 1, 4, DType::F32, &Default::default());
    model
        .forward_cached(LmInput::ids(ids(&[(0..15).collect()])), &mut cache)
        .unwrap();
    model
        .forward_cached(LmInput::ids(ids(&[vec![1]])), &mut cache)
        .unwrap();
    let err = model
        .forward_cached(LmInput::ids(ids(&[vec![1]])), &mut cache)
        .unwrap_err();
    assert_eq!(invalid(err), ("position", 16, 0, 0));
}

#[test]
fn embeddings_of_the_wrong_width_and_empty_inputs() {
    let model = gpt2();
    let device = Default::default();
    let wide = Tensor::<B, 3>::zeros([1, 3, 48], &device);
    let err = model.forward(LmInput::embeds(wide.clone())).unwrap_err();
    assert!(
        err.to_string().contains("width 48") && err.to_string().contains("hidden_size 32"),
        "{err}"
    );
    let replace =
        Tensor::<B, 2, Bool>::from_data(TensorData::new(vec![false, true, false], [1, 3]), &device);
    let err = model
        .forward(LmInput::mixed(ids(&[vec![1, 2, 3]]), wide, replace))
        .unwrap_err();
    assert!(err.to_string().contains("width 48"), "{err}");
    let empty = Tensor::<B, 2, Int>::zeros([1, 0], &device);
    let err = model.forward(LmInput::ids(empty)).unwrap_err();
    assert!(err.to_string().contains("empty input"), "{err}");
}
