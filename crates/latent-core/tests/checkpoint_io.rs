//! Saving in Hugging Face layout: the saved directory reloads identically, with exactly the keys and
//! shapes transformers wrote; bf16 loading; errors that name the file and key.

mod common;

use std::collections::BTreeMap;

use burn::tensor::DType;
use common::*;
use latent_core::hf::safetensors::Checkpoint;
use latent_core::{CausalLm, CoreError, LmInput, ModelConfig, Pretrained, SaveDtype};

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("latent-core-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn key_shapes(ckpt: &Checkpoint) -> BTreeMap<String, Vec<usize>> {
    ckpt.keys()
        .map(|k| (k.to_string(), ckpt.read(k).unwrap().unwrap().shape))
        .collect()
}

#[test]
fn saved_checkpoints_reload_identically_with_hf_keys() {
    for name in ["llama", "qwen2", "qwen3", "gpt2"] {
        let model = load_model(name);
        let dir = temp_dir(&format!("save-{name}"));
        model.save_pretrained(&dir, SaveDtype::F32).unwrap();

        let original = Checkpoint::open(&[fixture_dir(name).join("model.safetensors")]).unwrap();
        let saved = Checkpoint::open(&[dir.join("model.safetensors")]).unwrap();
        assert_eq!(
            key_shapes(&saved),
            key_shapes(&original),
            "{name}: keys or shapes differ"
        );
        for key in original.keys() {
            assert_eq!(
                saved.read(key).unwrap(),
                original.read(key).unwrap(),
                "{name}: {key} differs"
            );
        }

        let reloaded = load_model_from(&dir);
        let ids = ids_tensor(&inputs(name).single);
        let a = host(model.forward(LmInput::ids(ids.clone())).unwrap().logits);
        let b = host(reloaded.forward(LmInput::ids(ids)).unwrap().logits);
        assert_eq!(a, b, "{name}: reloaded logits differ");
        std::fs::remove_dir_all(dir).ok();
    }
}

#[test]
fn random_init_saves_and_reloads() {
    let config = ModelConfig::from_file(fixture_dir("qwen3").join("config.json")).unwrap();
    let model = CausalLm::<B>::new(&config, &Default::default());
    let dir = temp_dir("random");
    model.save_pretrained(&dir, SaveDtype::F32).unwrap();
    let reloaded = load_model_from(&dir);
    let ids = ids_tensor(&[vec![1, 2, 3]]);
    let a = host(model.forward(LmInput::ids(ids.clone())).unwrap().logits);
    let b = host(reloaded.forward(LmInput::ids(ids)).unwrap().logits);
    assert_eq!(a, b);
    assert_eq!(config.num_parameters(), model.num_params_checked());
    std::fs::remove_dir_all(dir).ok();
}

trait NumParams {
    fn num_params_checked(&self) -> usize;
}

impl NumParams for CausalLm<B> {
    fn num_params_checked(&self) -> usize {
        burn::module::Module::num_params(self)
    }
}

#[test]
fn parameter_counts_match_transformers() {
    // Counts printed by transformers for the fixtures (scripts/make_lm_fixtures.py).
    for (name, count) in [
        ("gpt2", 20192),
        ("llama", 21664),
        ("qwen2", 17664),
        ("qwen3", 27872),
    ] {
        let config = ModelConfig::from_file(fixture_dir(name).join("config.json")).unwrap();
        assert_eq!(config.num_parameters(), count, "{name}");
        assert_eq!(load_model(name).num_params_checked(), count, "{name}");
    }
}

#[test]
fn bf16_loading_stays_close_to_f32() {
    let device = Default::default();
    let dir = fixture_dir("llama");
    let f32_model = Pretrained::<B>::load(dir.to_str().unwrap(), &device, DType::F32)
        .unwrap()
        .model;
    let bf16_model = Pretrained::<B>::load(dir.to_str().unwrap(), &device, DType::BF16)
        .unwrap()
        .model;
    let ids = ids_tensor(&inputs("llama").single);
    let a = host(f32_model.forward(LmInput::ids(ids.clone())).unwrap().logits);
    let out = bf16_model.forward(LmInput::ids(ids)).unwrap().logits;
    assert_eq!(out.dtype(), DType::BF16);
    let b = host(out);
    let scale = a.data.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = max_abs_diff(&a, &b);
    assert!(
        diff < 0.05 * scale.max(1.0),
        "bf16 logits drift {diff} (scale {scale})"
    );
    assert!(diff > 0.0, "bf16 run should not be bit-identical to f32");
}

#[test]
fn missing_tensor_error_names_key_and_file() {
    let dir = temp_dir("missing");
    let model = load_model("llama");
    let tensors: Vec<_> = model
        .hf_tensors()
        .into_iter()
        .filter(|(k, _)| k != "model.layers.1.mlp.up_proj.weight")
        .collect();
    latent_core::hf::safetensors::write_safetensors(
        &dir.join("model.safetensors"),
        &tensors,
        SaveDtype::F32,
    )
    .unwrap();
    let config = model.config().clone();
    let ckpt = Checkpoint::open(&[dir.join("model.safetensors")]).unwrap();
    let err = CausalLm::<B>::new(&config, &Default::default())
        .load_checkpoint(&ckpt, DType::F32)
        .unwrap_err();
    assert!(matches!(err, CoreError::MissingTensor { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("model.layers.1.mlp.up_proj.weight") && msg.contains("model.safetensors"),
        "{msg}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn shape_mismatch_error_names_key() {
    let mut config = ModelConfig::from_file(fixture_dir("gpt2").join("config.json")).unwrap();
    config.intermediate_size = 40;
    let ckpt = Checkpoint::open(&[fixture_dir("gpt2").join("model.safetensors")]).unwrap();
    let msg = CausalLm::<B>::new(&config, &Default::default())
        .load_checkpoint(&ckpt, DType::F32)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("transformer.h.0.mlp.c_fc") && msg.contains("[32, 40]"),
        "{msg}"
    );
}
