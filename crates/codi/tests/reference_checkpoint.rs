//! Checkpoints saved the way the reference implementation saves them
//! (`scripts/make_codi_reference_checkpoint.py`: tiny random GPT-2 and Llama CODI models, PEFT LoRA
//! unmerged, projection `prj.{1,3,ln}`, 3 mean-resized rows; GPT-2 as a bf16 `pytorch_model.bin`,
//! Llama as `model.safetensors`) load into `CodiModel` and reproduce the PyTorch logits, final
//! hidden states and thoughts within 1e-4, through a KV cache as CODI's inference runs; a run
//! config evaluates such a directory as `codi_eval --model` does.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::DType;
use latent_codi::config::CodiRunConfig;
use latent_codi::data::PrepConfig;
use latent_codi::eval::EvalConfig;
use latent_codi::reference::{is_reference_dir, load_reference, ReferenceSettings};
use latent_codi::run::{evaluate_saved, load_model_dir, load_problems};
use latent_core::hf::safetensors::Checkpoint;
use latent_core::model::KvCache;
use latent_core::{CpuBackend, LmInput};
use serde_json::Value;

const TOL: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reference")
        .join(name)
}

fn inputs(name: &str) -> Value {
    let path = fixture(name).join("inputs.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn settings(name: &str, lora_alpha: Option<f64>) -> ReferenceSettings {
    ReferenceSettings {
        base_config: fixture(name).join("base/config.json"),
        lora_alpha,
        lora_r: Some(4),
        eos: None,
        pad: None,
        num_latent: 6,
        add_bos: false,
        answer_prefix: "The answer is: ".into(),
        prj_dropout: 0.0,
    }
}

/// The largest absolute difference between `got` and the fixture tensor `key` (shapes must agree).
fn diff<const D: usize>(got: Tensor<CpuBackend, D>, expected: &Checkpoint, key: &str) -> f32 {
    let want = expected.read(key).unwrap().unwrap();
    assert_eq!(got.dims().to_vec(), want.shape, "{key}: shape");
    let got: Vec<f32> = got.into_data().convert::<f32>().into_vec().unwrap();
    got.iter()
        .zip(&want.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// Runs `Q ‖ <bot>`, one thought and the step after it; returns the worst difference per output.
fn run(name: &str, lora_alpha: Option<f64>) -> Vec<(&'static str, f32)> {
    let device = Default::default();
    let dir = fixture(name);
    let (model, meta) = load_reference::<CpuBackend>(
        &dir.join("checkpoint"),
        &settings(name, lora_alpha),
        &device,
        DType::F32,
    )
    .unwrap();
    let spec = inputs(name);
    let t = &meta.tokens;
    assert_eq!(
        (t.base_vocab, t.pad, t.bot, t.eot, t.eos),
        (400, 400, 401, 402, 2),
        "the reference's special ids"
    );
    assert_eq!(model.lm.config().vocab_size, 403);
    let prj = meta.projection.unwrap();
    assert_eq!(
        (prj.hidden, prj.dim, prj.layer_norm),
        (16, spec["prj_dim"].as_u64().unwrap() as usize, true)
    );
    let rows: Vec<Vec<i64>> = serde_json::from_value(spec["input_ids"].clone()).unwrap();
    let (b, s) = (rows.len(), rows[0].len());
    let ids =
        Tensor::<CpuBackend, 2, Int>::from_data(TensorData::new(rows.concat(), [b, s]), &device);
    let expected = Checkpoint::open(&[dir.join("expected.safetensors")]).unwrap();
    let mut cache = KvCache::new(model.lm.config(), b, s + 1, DType::F32, &device);
    let out = model
        .lm
        .forward_cached(LmInput::ids(ids), &mut cache)
        .unwrap();
    let last = out.last_hidden.clone().slice([0..b, s - 1..s]);
    let thought = model.thought(last);
    let next = model
        .lm
        .forward_cached(LmInput::embeds(thought.clone()), &mut cache)
        .unwrap();
    vec![
        ("logits", diff(out.logits, &expected, "logits")),
        (
            "last_hidden",
            diff(out.last_hidden, &expected, "last_hidden"),
        ),
        ("thought", diff(thought, &expected, "thought")),
        ("next_logits", diff(next.logits, &expected, "next_logits")),
        (
            "next_thought",
            diff(model.thought(next.last_hidden), &expected, "next_thought"),
        ),
    ]
}

fn assert_matches(name: &str) {
    let alpha = inputs(name)["lora_alpha"].as_f64().unwrap();
    for (what, d) in run(name, Some(alpha)) {
        assert!(
            d < TOL,
            "{name} {what}: max difference {d} (tolerance {TOL})"
        );
    }
    // A wrong lora_alpha merges a different delta: the outputs no longer match.
    let worst = run(name, Some(2.0 * alpha))
        .iter()
        .map(|(_, d)| *d)
        .fold(0.0, f32::max);
    assert!(
        worst > 1e-2,
        "{name}: doubling lora_alpha changed nothing ({worst})"
    );
}

#[test]
fn gpt2_bf16_pytorch_model_bin_matches_pytorch() {
    assert_matches("gpt2");
}

#[test]
fn llama_untied_model_safetensors_matches_pytorch() {
    assert_matches("llama");
}

#[test]
fn missing_lora_alpha_and_wrong_rank_are_errors() {
    let dir = fixture("gpt2").join("checkpoint");
    let err = load_reference::<CpuBackend>(
        &dir,
        &settings("gpt2", None),
        &Default::default(),
        DType::F32,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("pytorch_model.bin") && err.contains("lora_alpha"),
        "{err}"
    );
    let mut wrong = settings("gpt2", Some(16.0));
    wrong.lora_r = Some(128);
    let err = load_reference::<CpuBackend>(&dir, &wrong, &Default::default(), DType::F32)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`lora.r`") && err.contains("rank 4"), "{err}");
    // The base config of the other family does not fit the weights.
    let mut other = settings("gpt2", Some(16.0));
    other.base_config = fixture("llama").join("base/config.json");
    assert!(load_reference::<CpuBackend>(&dir, &other, &Default::default(), DType::F32).is_err());
}

/// A run config for the GPT-2 fixture: the base architecture, the tiny-chat tokenizer (400 ids,
/// EOS 2) and the run's LoRA settings.
fn run_config(dir: &Path) -> CodiRunConfig {
    let tokenizer = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../latent-core/tests/fixtures/tiny-chat/tokenizer.json");
    serde_json::from_value(serde_json::json!({
        "model": {
            "config": fixture("gpt2").join("base/config.json"),
            "tokenizer": tokenizer,
        },
        "method": {"task": "codi", "num_latent": 3, "restore_from": dir},
        "lora": {"r": 4, "alpha": 16.0, "target_modules": ["c_attn", "c_proj", "c_fc"]},
        "data": {},
        "training": {
            "output_dir": std::env::temp_dir().join("codi-reference-unused"),
            "epochs": 1,
            "per_device_batch_size": 2,
            "effective_batch_size": 2,
            "learning_rate": 1e-3
        }
    }))
    .unwrap()
}

#[test]
fn a_run_config_evaluates_and_restores_a_reference_directory() {
    let dir = fixture("gpt2").join("checkpoint");
    assert!(is_reference_dir(&dir));
    let config = run_config(&dir);
    let device = Default::default();
    let (model, tokenizer, meta) =
        load_model_dir::<CpuBackend>(&dir, &config, &device, DType::F32).unwrap();
    assert!(tokenizer.is_some());
    assert_eq!((meta.num_latent, model.tokens.bot), (3, 401));
    let sample = latent_datasets::data_dir::sample("gsm8k/test_sample.jsonl");
    let problems = load_problems(&sample, latent_codi::config::DataFormat::Gsm8k, Some(3)).unwrap();
    let (summary, report) = evaluate_saved::<CpuBackend>(
        &config,
        &dir,
        &problems,
        |_, _| PrepConfig::default(),
        &EvalConfig {
            max_new_tokens: 4,
            ..EvalConfig::default()
        },
        &device,
        |_| {},
    )
    .unwrap();
    assert_eq!((summary.examples, report.kept), (3, 3));
    assert_eq!(summary.mean_latent_steps, 3.0);
    // As `method.restore_from` (training from a published checkpoint), with the projection checked.
    let built = latent_codi::run::build_model::<CpuBackend>(&config, &device).unwrap();
    assert_eq!(built.2.projection.unwrap().dim, 24);
    let mut mismatched = config.clone();
    mismatched.method.prj_dim = Some(16);
    let err = latent_codi::run::build_model::<CpuBackend>(&mismatched, &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`method.prj_dim`") && err.contains("24"),
        "{err}"
    );
}
