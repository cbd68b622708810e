//! `config.json` validation: unknown families, missing fields and unsupported settings are errors
//! that name the file and the key.

use std::path::Path;

use latent_core::hf::config::{Family, Positions, RopeScaling};
use latent_core::{CoreError, ModelConfig};

fn parse(text: &str) -> Result<ModelConfig, CoreError> {
    ModelConfig::from_json_str(text, Path::new("dir/config.json"))
}

const LLAMA: &str = r#"{"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
  "num_hidden_layers": 1, "num_attention_heads": 2"#;

#[test]
fn unknown_model_type_is_named() {
    let msg = parse(r#"{"model_type": "mamba"}"#).unwrap_err().to_string();
    assert!(
        msg.contains("dir/config.json") && msg.contains("mamba"),
        "{msg}"
    );
}

#[test]
fn missing_field_is_named() {
    let msg = parse(r#"{"model_type": "qwen2", "vocab_size": 10}"#)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("dir/config.json") && msg.contains("hidden_size"),
        "{msg}"
    );
    let msg = parse(r#"{"vocab_size": 10}"#).unwrap_err().to_string();
    assert!(msg.contains("model_type"), "{msg}");
}

#[test]
fn unsupported_settings_are_named() {
    let msg = parse(&format!(
        r#"{LLAMA}, "rope_scaling": {{"rope_type": "yarn", "factor": 2.0}}}}"#
    ))
    .unwrap_err()
    .to_string();
    assert!(msg.contains("rope_type") && msg.contains("yarn"), "{msg}");
    let msg = parse(&format!(r#"{LLAMA}, "hidden_act": "relu"}}"#))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("hidden_act"), "{msg}");
    let msg = parse(&format!(r#"{LLAMA}, "num_key_value_heads": 3}}"#))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("num_key_value_heads"), "{msg}");
}

#[test]
fn both_rope_layouts_are_read() {
    let v4 = parse(&format!(
        r#"{LLAMA}, "rope_theta": 500000.0, "rope_scaling": {{"type": "llama3", "factor": 32.0,
        "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}}}"#
    ))
    .unwrap();
    let v5 = parse(&format!(
        r#"{LLAMA}, "rope_parameters": {{"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
        "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}}}"#
    ))
    .unwrap();
    assert_eq!(v4.positions, v5.positions);
    match v4.positions {
        Positions::Rope(rope) => {
            assert_eq!(rope.theta, 500000.0);
            assert!(matches!(rope.scaling, RopeScaling::Llama3 { factor, .. } if factor == 32.0));
        }
        Positions::Learned => panic!("llama uses rope"),
    }
}

#[test]
fn family_defaults_follow_transformers() {
    let qwen3 = parse(
        r#"{"model_type": "qwen3", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
        "num_hidden_layers": 1, "num_attention_heads": 2}"#,
    )
    .unwrap();
    assert_eq!(qwen3.family, Family::Qwen3);
    assert_eq!(qwen3.head_dim, 128);
    assert!(qwen3.qk_norm && !qwen3.qkv_bias);
    let qwen2 = parse(
        r#"{"model_type": "qwen2", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
        "num_hidden_layers": 1, "num_attention_heads": 2, "eos_token_id": [3, 4]}"#,
    )
    .unwrap();
    assert!(qwen2.qkv_bias && !qwen2.o_bias);
    assert_eq!(qwen2.eos_token_ids, vec![3, 4]);
    let gpt2 = parse(
        r#"{"model_type": "gpt2", "vocab_size": 10, "n_embd": 8, "n_layer": 1, "n_head": 2,
        "n_positions": 16}"#,
    )
    .unwrap();
    assert_eq!(gpt2.intermediate_size, 32);
    assert!(gpt2.tie_word_embeddings);
}
