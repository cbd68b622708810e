//! Position-by-position decoding through the KV cache equals the full forward, for every family:
//! token steps, vector steps, and left-padded batches (with cache growth along the way).

mod common;

use burn::prelude::*;
use burn::tensor::DType;
use common::*;
use latent_core::infer::KvCache;
use latent_core::{CausalLm, LmInput};

const FAMILIES: [&str; 4] = ["llama", "qwen2", "qwen3", "gpt2"];

fn cache(model: &CausalLm<B>, batch: usize) -> KvCache<B> {
    // A capacity of 2 forces the cache to grow twice.
    KvCache::new(model.config(), batch, 2, DType::F32, &Default::default())
}

/// Logits of positions `range` from a full-forward output.
fn columns(t: &Tensor<B, 3>, range: std::ops::Range<usize>) -> Tensor<B, 3> {
    let [b, _, v] = t.dims();
    t.clone().slice([0..b, range, 0..v])
}

#[test]
fn token_steps_match_full_forward() {
    for name in FAMILIES {
        let model = load_model(name);
        let ids = ids_tensor(&inputs(name).single);
        let s = ids.dims()[1];
        let full = model.forward(LmInput::ids(ids.clone())).unwrap().logits;
        let mut kv = cache(&model, 1);
        let prefill = model
            .forward_cached(LmInput::ids(ids.clone().slice([0..1, 0..3])), &mut kv)
            .unwrap();
        let diff = max_abs_diff(&host(prefill.logits), &host(columns(&full, 0..3)));
        assert!(diff <= TOL, "{name}: prefill differs by {diff}");
        for t in 3..s {
            let step = model
                .forward_cached(LmInput::ids(ids.clone().slice([0..1, t..t + 1])), &mut kv)
                .unwrap();
            let diff = max_abs_diff(&host(step.logits), &host(columns(&full, t..t + 1)));
            assert!(diff <= TOL, "{name}: step {t} differs by {diff}");
        }
        assert_eq!(kv.len(), s);
        assert!(kv.capacity() >= s);
    }
}

#[test]
fn vector_steps_match_mixed_full_forward() {
    for name in FAMILIES {
        let model = load_model(name);
        let ids = ids_tensor(&inputs(name).single);
        let s = ids.dims()[1];
        let h = model.config().hidden_size;
        // Latent vectors at positions 3 and 4: scaled hidden states, as a continuous thought would be.
        let vectors = model
            .forward(LmInput::ids(ids.clone()))
            .unwrap()
            .last_hidden
            * 0.5;
        let replace: Vec<bool> = (0..s).map(|i| i == 3 || i == 4).collect();
        let replace =
            Tensor::<B, 2, Bool>::from_data(TensorData::new(replace, [1, s]), &Default::default());
        let full = model
            .forward(LmInput::mixed(ids.clone(), vectors.clone(), replace))
            .unwrap()
            .logits;
        let mut kv = cache(&model, 1);
        model
            .forward_cached(LmInput::ids(ids.clone().slice([0..1, 0..3])), &mut kv)
            .unwrap();
        for t in 3..s {
            let input = if t == 3 || t == 4 {
                LmInput::embeds(vectors.clone().slice([0..1, t..t + 1, 0..h]))
            } else {
                LmInput::ids(ids.clone().slice([0..1, t..t + 1]))
            };
            let step = model.forward_cached(input, &mut kv).unwrap();
            let diff = max_abs_diff(&host(step.logits), &host(columns(&full, t..t + 1)));
            assert!(diff <= TOL, "{name}: step {t} differs by {diff}");
        }
    }
}

#[test]
fn padded_batch_steps_match_full_forward() {
    for name in FAMILIES {
        let model = load_model(name);
        let inputs = inputs(name);
        let ids = ids_tensor(&inputs.batch_ids);
        let mask = ids_tensor(&inputs.batch_mask);
        let [b, s] = ids.dims();
        let full = host(
            model
                .forward(LmInput::ids(ids.clone()).attention_mask(mask.clone()))
                .unwrap()
                .logits,
        );
        let mut kv = cache(&model, b);
        let p = 4; // row 1 is all padding in this prefix except its last slot
        let prefill = model
            .forward_cached(
                LmInput::ids(ids.clone().slice([0..b, 0..p]))
                    .attention_mask(mask.clone().slice([0..b, 0..p])),
                &mut kv,
            )
            .unwrap();
        let mut got = vec![host(prefill.logits)];
        for t in p..s {
            let step = model
                .forward_cached(LmInput::ids(ids.clone().slice([0..b, t..t + 1])), &mut kv)
                .unwrap();
            got.push(host(step.logits));
        }
        for (row, row_mask) in inputs.batch_mask.iter().enumerate() {
            for t in 0..s {
                if row_mask[t] == 0 {
                    continue;
                }
                let (chunk, offset) = if t < p {
                    (&got[0], t)
                } else {
                    (&got[1 + t - p], 0)
                };
                let diff = max_abs_diff(
                    &select(chunk, row, offset..offset + 1),
                    &select(&full, row, t..t + 1),
                );
                assert!(
                    diff <= TOL,
                    "{name}: row {row} position {t} differs by {diff}"
                );
            }
        }
    }
}

#[test]
fn fork_and_truncate_replay_identically() {
    let model = load_model("qwen3");
    let ids = ids_tensor(&inputs("qwen3").single);
    let mut kv = cache(&model, 1);
    model
        .forward_cached(LmInput::ids(ids.clone().slice([0..1, 0..4])), &mut kv)
        .unwrap();
    let mut forked = kv.fork(3);
    assert_eq!(forked.batch(), 3);
    let next = ids.clone().slice([0..1, 4..5]).repeat_dim(0, 3);
    let branch = host(
        model
            .forward_cached(LmInput::ids(next), &mut forked)
            .unwrap()
            .logits,
    );
    let single = host(
        model
            .forward_cached(LmInput::ids(ids.clone().slice([0..1, 4..5])), &mut kv)
            .unwrap()
            .logits,
    );
    for row in 0..3 {
        assert!(max_abs_diff(&select(&branch, row, 0..1), &single) <= TOL);
    }
    // Truncate back and take the same step again.
    kv.truncate(4);
    let again = host(
        model
            .forward_cached(LmInput::ids(ids.slice([0..1, 4..5])), &mut kv)
            .unwrap()
            .logits,
    );
    assert_eq!(again, single);
}
