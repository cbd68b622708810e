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

/// Decoding steps whose products are cut across threads (`model::few_rows_matmul`: Flex, a pool
/// of 2, widths large enough) give the full forward's logits, for token and vector steps, batch 1
/// and batch 3, with a tied head (cut by columns) and row-major weights (cut over the depth).
#[test]
fn steps_with_products_cut_across_threads_match_full_forward() {
    use latent_core::infer::{StepInput, Stepper};
    use latent_core::model::few_rows_matmul::cuts_products;
    use latent_core::ModelConfig;
    let text = r#"{"model_type": "qwen2", "vocab_size": 4096, "hidden_size": 256,
        "intermediate_size": 2048, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 64, "tie_word_embeddings": true}"#;
    let config = ModelConfig::from_json_str(text, std::path::Path::new("config.json")).unwrap();
    let device = Default::default();
    B::seed(&device, 7);
    let model = CausalLm::<B>::new(&config, &device);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        assert!(
            cuts_products::<B>(1, 256, 2048, DType::F32),
            "the steps below take the cut path"
        );
        for batch in [1usize, 3] {
            let prompts: Vec<Vec<u32>> = (0..batch)
                .map(|r| (0..5).map(|i| (r * 31 + i * 7) as u32).collect())
                .collect();
            let ids: Vec<i64> = prompts.concat().iter().map(|&t| i64::from(t)).collect();
            let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [batch * 5]), &device);
            let prompt_embeds = model.embed_tokens.weight.val().select(0, ids);
            let mut stepper = Stepper::new(&model, batch, 16);
            let mut out = stepper.prefill_ids(&prompts, 0).unwrap();
            // Fed positions after the prompt, as embeddings for the full forward.
            let mut fed: Vec<Tensor<B, 2>> = Vec::new();
            for step in 0..4 {
                let inputs: Vec<StepInput<B>> = if step % 2 == 0 {
                    out.greedy_tokens()
                        .into_iter()
                        .map(StepInput::Token)
                        .collect()
                } else {
                    (0..batch)
                        .map(|r| {
                            StepInput::Vector(out.hidden.clone().narrow(0, r, 1).reshape([256]))
                        })
                        .collect()
                };
                let embeds: Vec<Tensor<B, 1>> = inputs
                    .iter()
                    .map(|i| match i {
                        StepInput::Token(t) => model
                            .embed_tokens
                            .weight
                            .val()
                            .narrow(0, *t as usize, 1)
                            .reshape([256]),
                        StepInput::Vector(v) => v.clone(),
                    })
                    .collect();
                fed.push(Tensor::stack(embeds, 0));
                out = stepper.step(&inputs).unwrap();
                let mut all = vec![prompt_embeds.clone().reshape([batch, 5, 256])];
                all.extend(fed.iter().map(|f| f.clone().reshape([batch, 1, 256])));
                let full = model
                    .forward(LmInput::embeds(Tensor::cat(all, 1)))
                    .unwrap()
                    .logits;
                let s = 5 + fed.len();
                let last = columns(&full, s - 1..s).reshape([batch, 1, 4096]);
                let diff = max_abs_diff(
                    &host(out.logits.clone().reshape([batch, 1, 4096])),
                    &host(last),
                );
                assert!(diff <= TOL, "batch {batch}, step {step}: differs by {diff}");
            }
        }
    });
}
