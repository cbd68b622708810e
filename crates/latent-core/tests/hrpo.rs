//! HRPO's latent pieces against a PyTorch restatement of HRPO's code (`scripts/make_hrpo_fixtures.py`,
//! fixtures in `tests/fixtures/hrpo/`): the thinking residual and its gradients, the projection, the
//! probability-weighted thinking state after transformers' warpers, a greedy HRPO rollout, and PEFT
//! adapters that carry the residual in `modules_to_save`.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::DType;
use common::*;
use latent_core::hf::safetensors::{Checkpoint, HostTensor};
use latent_core::hf::tokenizer::load_tokenizer;
use latent_core::infer::{Sampler, SamplingConfig};
use latent_core::latent::{
    probability_weighted, rollout, RolloutConfig, ThinkingLm, ThinkingProjection, ThinkingResidual,
    ThinkingResidualConfig, ThinkingSource, RESIDUAL_MODULES,
};
use latent_core::lora::{LoraConfig, ADAPTER_CONFIG, ADAPTER_WEIGHTS};
use latent_core::CpuBackend;

type AB = Autodiff<CpuBackend>;

const EXACT: f32 = 1e-5;

fn hrpo_dir() -> PathBuf {
    fixture_dir("hrpo")
}

fn open(path: PathBuf) -> Checkpoint {
    Checkpoint::open(&[path]).unwrap()
}

fn tensor<BK: Backend, const D: usize>(t: &HostTensor) -> Tensor<BK, D> {
    Tensor::from_data(
        TensorData::new(t.data.clone(), t.shape.clone()),
        &Default::default(),
    )
}

fn host_of<BK: Backend, const D: usize>(t: Tensor<BK, D>) -> HostTensor {
    let data = t.into_data().convert::<f32>();
    HostTensor {
        shape: data.shape.to_vec(),
        data: data.into_vec().unwrap(),
    }
}

fn close(name: &str, got: &HostTensor, want: &HostTensor, tol: f32) {
    let diff = max_abs_diff(got, want);
    assert!(diff <= tol, "{name}: max abs diff {diff:.3e} > {tol:.0e}");
}

/// An empty residual of width `h` (its values come from a checkpoint).
fn residual_of<BK: Backend>(h: usize) -> ThinkingResidual<BK> {
    ThinkingResidualConfig::default()
        .init(h, &Default::default())
        .unwrap()
}

#[test]
fn residual_and_projection_match_hrpo_with_gradients() {
    let ckpt = open(hrpo_dir().join("residual.safetensors"));
    let read = |k: &str| expected_tensor(&ckpt, k);
    let (residual, used) = residual_of::<AB>(8)
        .load_hf(&ckpt, "model.", DType::F32)
        .unwrap();
    assert_eq!(used.len(), 5, "two gates with bias and Λ: {used:?}");
    let fused = residual.forward(tensor(&read("e")), tensor(&read("h")));
    close("x", &host_of(fused.x.clone()), &read("x"), EXACT);
    close("a", &host_of(fused.a.clone()), &read("a"), EXACT);
    let loss = (fused.x * tensor::<AB, 3>(&read("wx"))).sum()
        + (fused.a * tensor::<AB, 3>(&read("wa"))).sum();
    let grads = loss.backward();
    let grad = |p: Tensor<AB, 2>| host_of(p.grad(&grads).unwrap()).transposed();
    for (name, gate) in RESIDUAL_MODULES
        .iter()
        .zip([&residual.gate_r, &residual.gate_i])
    {
        let key = format!("grad.model.{name}");
        close(
            &format!("{key}.weight"),
            &grad(gate.weight.val()),
            &read(&format!("{key}.weight")),
            EXACT,
        );
        let bias = host_of(gate.bias.as_ref().unwrap().val().grad(&grads).unwrap());
        close(
            &format!("{key}.bias"),
            &bias,
            &read(&format!("{key}.bias")),
            EXACT,
        );
    }
    let lambda = host_of(residual.lambda.val().grad(&grads).unwrap());
    close(
        "grad Λ",
        &lambda,
        &read("grad.model.thinking_residual_Lambda.Lambda"),
        EXACT,
    );

    let (projection, _) = ThinkingProjection::<AB>::new(8, 0.001, &Default::default())
        .load_hf(&ckpt, "model.", DType::F32)
        .unwrap();
    let projected = projection.forward(tensor::<AB, 3>(&read("hidden")));
    close(
        "projected",
        &host_of(projected.clone()),
        &read("projected"),
        EXACT,
    );
    let norms = host_of(projected.clone().square().sum_dim(2).sqrt());
    assert!(
        norms.data.iter().all(|n| (n - 1.0).abs() < 1e-5),
        "unit norm"
    );
    let grads = (projected * tensor::<AB, 3>(&read("wp"))).sum().backward();
    let g = host_of(projection.weight.val().grad(&grads).unwrap()).transposed();
    close(
        "grad W_p",
        &g,
        &read("grad.model.thinking_projection.weight"),
        EXACT,
    );
}

#[test]
fn probability_weighted_states_match_transformers_warpers() {
    let ckpt = open(hrpo_dir().join("states.safetensors"));
    let cases: BTreeMap<String, Option<(f32, usize, f32)>> =
        serde_json::from_str(&std::fs::read_to_string(hrpo_dir().join("states.json")).unwrap())
            .unwrap();
    let logits = expected_tensor(&ckpt, "logits");
    let embed: Tensor<B, 2> = tensor(&expected_tensor(&ckpt, "embed"));
    let v = logits.shape[1];
    for (name, case) in cases {
        let sampling = match case {
            None => SamplingConfig::greedy(),
            Some((temperature, top_k, top_p)) => SamplingConfig {
                temperature,
                top_k,
                top_p,
                seed: 0,
            },
        };
        let sampler = Sampler::new(sampling);
        let dists: Vec<_> = logits
            .data
            .chunks(v)
            .map(|row| sampler.distribution_with_support(row))
            .collect();
        let truncated = name.contains("_k") || name.contains("_p");
        assert_eq!(
            dists.iter().all(|d| d.kept.is_some()),
            truncated,
            "{name}: support"
        );
        let h = probability_weighted(embed.clone(), &dists.iter().collect::<Vec<_>>());
        close(
            &name,
            &host_of(h),
            &expected_tensor(&ckpt, &format!("h.{name}")),
            EXACT,
        );
    }
    // A one-hot distribution gives exactly the token's embedding (its norm, not 1).
    let mut probs = vec![0.0; v];
    probs[7] = 1.0;
    let one_hot = latent_core::infer::TokenDistribution {
        probs,
        kept: Some(vec![7]),
    };
    let h = host_of(probability_weighted(embed.clone(), &[&one_hot]));
    let row = host_of(embed.narrow(0, 7, 1));
    assert_eq!(h.data, row.data, "one-hot p gives E[token]");
    let norm = h.data.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(
        (norm - 1.0).abs() > 0.1,
        "the two sources differ in scale: {norm}"
    );
}

/// The tiny chat model with the fixture's residual (and projection for that source).
fn rollout_model(source: ThinkingSource) -> (ThinkingLm<B>, tokenizers::Tokenizer) {
    let lm = load_model("tiny-chat");
    let h = lm.config().hidden_size;
    let weights = open(hrpo_dir().join("rollout").join("weights.safetensors"));
    let (residual, _) = residual_of::<B>(h)
        .load_hf(&weights, "model.", DType::F32)
        .unwrap();
    let projection = (source == ThinkingSource::Projection).then(|| {
        ThinkingProjection::new(h, 0.001, &Default::default())
            .load_hf(&weights, "model.", DType::F32)
            .unwrap()
            .0
    });
    let tokenizer = load_tokenizer(fixture_dir("tiny-chat").join("tokenizer.json")).unwrap();
    (
        ThinkingLm {
            lm,
            residual,
            projection,
        },
        tokenizer,
    )
}

#[derive(serde::Deserialize)]
struct RolloutCase {
    delimiter: String,
    completion: Vec<u32>,
    thinking_mask: Vec<bool>,
    gate_mean: Vec<f32>,
}

#[derive(serde::Deserialize)]
struct RolloutFixture {
    prompt: Vec<u32>,
    max_new_tokens: usize,
    eos: u32,
    cases: BTreeMap<String, RolloutCase>,
}

#[test]
fn greedy_rollout_equals_hrpo_generation_loop() {
    let dir = hrpo_dir().join("rollout");
    let fixture: RolloutFixture =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let states = open(dir.join("states.safetensors"));
    for (name, source) in [
        ("probability_weighted", ThinkingSource::ProbabilityWeighted),
        ("projection", ThinkingSource::Projection),
        ("throughout", ThinkingSource::ProbabilityWeighted),
    ] {
        let case = &fixture.cases[name];
        let (model, tokenizer) = rollout_model(source);
        let config = RolloutConfig {
            group_size: 1,
            max_new_tokens: fixture.max_new_tokens,
            sampling: SamplingConfig::greedy(),
            eos_token_ids: vec![fixture.eos],
            pad_token_id: fixture.eos,
            answer_delimiter: case.delimiter.clone(),
            mix: true,
            stop: None,
        };
        let out = rollout(
            &model,
            &tokenizer,
            std::slice::from_ref(&fixture.prompt),
            &config,
        )
        .unwrap();
        assert_eq!(out.completions[0], case.completion, "{name}: ids");
        let p = out.prompt_width;
        assert!(out.thinking_mask[..p].iter().all(|&m| !m), "prompt mixed");
        assert_eq!(
            out.thinking_mask[p..],
            case.thinking_mask[..],
            "{name}: thinking mask"
        );
        let hidden = out.hidden;
        let got = HostTensor {
            shape: vec![out.completion_width, hidden],
            data: out.thinking_states[p * hidden..].to_vec(),
        };
        close(
            &format!("{name}: stored h"),
            &got,
            &expected_tensor(&states, &format!("{name}.states")),
            EXACT,
        );
        for (j, (&g, &want)) in out.gate_mean[p..].iter().zip(&case.gate_mean).enumerate() {
            assert!(
                (g - want).abs() <= EXACT,
                "{name}: gate mean at {j}: {g} vs {want}"
            );
        }
        assert_eq!(out.completion_mask[p..], vec![1; out.completion_width][..]);
    }
}

#[test]
fn batched_rollouts_equal_row_by_row_rollouts() {
    let (model, tokenizer) = rollout_model(ThinkingSource::ProbabilityWeighted);
    let prompts: Vec<Vec<u32>> = vec![vec![316, 266, 303, 223, 21], vec![345, 223, 22, 33]];
    let config = RolloutConfig {
        group_size: 3,
        max_new_tokens: 12,
        sampling: SamplingConfig {
            temperature: 0.9,
            top_k: 20,
            top_p: 0.95,
            seed: 11,
        },
        eos_token_ids: vec![2, 86],
        pad_token_id: 2,
        answer_delimiter: "T".into(),
        mix: true,
        stop: None,
    };
    let batch = rollout(&model, &tokenizer, &prompts, &config).unwrap();
    assert_eq!(batch.rows, 6);
    let lengths: Vec<usize> = batch.completions.iter().map(Vec::len).collect();
    assert!(
        lengths.iter().any(|&n| n < config.max_new_tokens),
        "some row ends early, so compaction happens: {lengths:?}"
    );
    let distinct: std::collections::HashSet<_> = batch.completions[..3].iter().collect();
    assert!(distinct.len() > 1, "a group samples different completions");
    let w = batch.width();
    let h = batch.hidden;
    for r in 0..batch.rows {
        let alone = rollout(
            &model,
            &tokenizer,
            &prompts[r / 3..r / 3 + 1],
            &RolloutConfig {
                group_size: 1,
                sampling: SamplingConfig {
                    seed: config.sampling.seed + r as u64,
                    ..config.sampling.clone()
                },
                ..config.clone()
            },
        )
        .unwrap();
        assert_eq!(alone.completions[0], batch.completions[r], "row {r}");
        let n = alone.completion_width;
        let (bp, ap) = (batch.prompt_width, alone.prompt_width);
        let batch_mask = &batch.thinking_mask[r * w + bp..r * w + bp + n];
        assert_eq!(batch_mask, &alone.thinking_mask[ap..ap + n], "row {r} mask");
        let batch_states = &batch.thinking_states[(r * w + bp) * h..(r * w + bp + n) * h];
        let alone_states = &alone.thinking_states[ap * h..(ap + n) * h];
        let diff = batch_states
            .iter()
            .zip(alone_states)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff <= EXACT, "row {r}: states differ by {diff}");
    }
}

#[test]
fn peft_adapters_with_the_residual_load_and_round_trip() {
    for name in ["qwen2", "llama"] {
        let dir = hrpo_dir().join("adapter").join(name);
        let inputs: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("inputs.json")).unwrap())
                .unwrap();
        let ids: Vec<i64> = serde_json::from_value(inputs["ids"].clone()).unwrap();
        let mask: Vec<bool> = inputs["thinking_mask"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64() == Some(1))
            .collect();
        let expected = open(dir.join("expected.safetensors"));
        let states = expected_tensor(&expected, "thinking_states");
        let s = ids.len();
        let forward = |model: &ThinkingLm<B>| {
            let h = model.lm.config().hidden_size;
            let states: Tensor<B, 2> = tensor(&states);
            let mask = Tensor::<B, 2, Bool>::from_data(
                TensorData::new(mask.clone(), [1, s]),
                &Default::default(),
            );
            let out = model
                .forward_mixed(
                    ids_tensor(std::slice::from_ref(&ids)),
                    mask,
                    states.reshape([1, s, h]),
                    None,
                )
                .unwrap();
            host(out.logits)
        };
        let model = ThinkingLm::load_adapter(load_model(name), &dir, DType::F32).unwrap();
        assert!(model.projection.is_none());
        let logits = forward(&model);
        close(
            &format!("{name}: mixed logits vs PEFT"),
            &logits,
            &expected_tensor(&expected, "logits"),
            TOL,
        );
        // Written here, the adapter has PEFT's keys, shapes and values, and reloads to the same logits.
        let out = std::env::temp_dir().join(format!("hrpo-adapter-{name}-{}", std::process::id()));
        let config = LoraConfig::from_file(dir.join(ADAPTER_CONFIG)).unwrap();
        model.save_adapter(&out, &config).unwrap();
        let theirs = open(dir.join(ADAPTER_WEIGHTS));
        let ours = open(out.join(ADAPTER_WEIGHTS));
        let mut keys: Vec<&str> = ours.keys().collect();
        keys.sort();
        let mut want: Vec<&str> = theirs.keys().collect();
        want.sort();
        assert_eq!(keys, want, "{name}: adapter keys");
        assert!(keys.contains(&"base_model.model.model.thinking_residual_Lambda.Lambda"));
        for key in keys {
            let (a, b) = (
                ours.read(key).unwrap().unwrap(),
                theirs.read(key).unwrap().unwrap(),
            );
            assert_eq!(a.shape, b.shape, "{name}: {key}");
            close(key, &a, &b, 0.0);
        }
        let saved = LoraConfig::from_file(out.join(ADAPTER_CONFIG)).unwrap();
        for m in RESIDUAL_MODULES {
            assert!(saved
                .modules_to_save
                .as_ref()
                .unwrap()
                .iter()
                .any(|x| x == m));
        }
        let reloaded = ThinkingLm::load_adapter(load_model(name), &out, DType::F32).unwrap();
        close(
            &format!("{name}: reloaded"),
            &forward(&reloaded),
            &logits,
            0.0,
        );
        std::fs::remove_dir_all(&out).unwrap();
    }
}

#[test]
fn residual_defaults_start_near_the_base_model_and_keep_lambda_in_f32() {
    let _rng = latent_core::seed_backend::<B>(&Default::default(), 3);
    let residual = ThinkingResidualConfig::default()
        .init::<B>(16, &Default::default())
        .unwrap();
    // a = u^r with u in [0.99, 0.999] and r ≈ 0.5: about 0.995.
    let e = Tensor::<B, 3>::ones([1, 1, 16], &Default::default());
    let fused = residual.forward(e.clone(), e.clone());
    let a = host(fused.a).data;
    assert!(a.iter().all(|&x| x > 0.99 && x < 1.0), "{a:?}");
    let cast = residual.cast(DType::BF16);
    assert_eq!(cast.lambda.val().dtype(), DType::F32);
    assert_eq!(cast.gate_r.weight.val().dtype(), DType::BF16);
    let fused = cast.forward(e.clone().cast(DType::BF16), e.cast(DType::BF16));
    assert_eq!(fused.x.dtype(), DType::BF16);
    assert_eq!(fused.a.dtype(), DType::F32);
    assert!(ThinkingResidualConfig {
        r_min: 0.9,
        r_max: 1.0,
        ..Default::default()
    }
    .init::<B>(4, &Default::default())
    .is_err());
}
