//! Sharded checkpoints (`model.safetensors.index.json`) load like single files; a missing tokenizer
//! file is an error naming it.

mod common;

use burn::tensor::DType;
use common::*;
use latent_core::hf::safetensors::write_safetensors;
use latent_core::{LmInput, Pretrained, SaveDtype};

#[test]
fn sharded_checkpoint_loads_like_a_single_file() {
    let model = load_model("qwen3");
    let dir = std::env::temp_dir().join(format!("latent-core-sharded-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        fixture_dir("qwen3").join("config.json"),
        dir.join("config.json"),
    )
    .unwrap();
    let tensors = model.hf_tensors();
    let (first, second) = tensors.split_at(tensors.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (name, part) in [
        ("model-00001-of-00002.safetensors", first),
        ("model-00002-of-00002.safetensors", second),
    ] {
        write_safetensors(&dir.join(name), part, SaveDtype::BF16).unwrap();
        for (key, _) in part {
            weight_map.insert(key.clone(), name.into());
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();

    let loaded =
        Pretrained::<B>::load(dir.to_str().unwrap(), &Default::default(), DType::F32).unwrap();
    assert_eq!(loaded.files.weights.len(), 2);
    assert!(loaded.unused_keys.is_empty());
    assert!(loaded.tokenizer.is_none());
    let ids = ids_tensor(&inputs("qwen3").single);
    let a = host(model.forward(LmInput::ids(ids.clone())).unwrap().logits);
    let b = host(loaded.model.forward(LmInput::ids(ids)).unwrap().logits);
    // bf16 on disk: close, not identical.
    let diff = max_abs_diff(&a, &b);
    assert!(
        diff > 0.0 && diff < 0.1,
        "sharded bf16 logits differ by {diff}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn tokenizer_errors_name_the_file() {
    let msg = latent_core::hf::tokenizer::load_tokenizer("no/such/tokenizer.json")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("no/such/tokenizer.json"), "{msg}");
}
