//! Llama, Qwen2 and Qwen3: their `config.json` layouts and Hugging Face weight names.
//!
//! The three share one architecture (pre-RMSNorm blocks, rotary attention with grouped KV heads,
//! gated SiLU MLP) with switches: Qwen2 always has q/k/v biases; Qwen3 adds per-head q/k RMSNorm
//! and an explicit `head_dim` (128 when absent); Llama 3.1+ may scale RoPE frequencies.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::weight_names::HfRef;
use crate::hf::config::{
    deserialize, token_ids, unsupported, Family, MlpKind, ModelConfig, NormKind, Positions,
    RopeConfig, RopeScaling,
};
use crate::Result;

/// `config.json` of Llama/Qwen2/Qwen3, field for field (only the fields the model uses).
#[derive(Debug, Deserialize)]
struct LlamaJson {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    hidden_act: Option<String>,
    max_position_embeddings: Option<usize>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    rope_scaling: Option<Value>,
    rope_parameters: Option<Value>,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
    tie_word_embeddings: Option<bool>,
    initializer_range: Option<f64>,
    use_sliding_window: Option<bool>,
}

/// Converts a Llama-family `config.json` into a [`ModelConfig`].
pub(crate) fn parse_config(raw: Value, family: Family, path: &Path) -> Result<ModelConfig> {
    let c: LlamaJson = deserialize(&raw, path)?;
    let act = c.hidden_act.as_deref().unwrap_or("silu");
    if act != "silu" {
        return Err(unsupported(path, "hidden_act", act));
    }
    if c.use_sliding_window == Some(true) {
        return Err(unsupported(path, "use_sliding_window", true));
    }
    let default_head_dim = match family {
        Family::Qwen3 => 128,
        _ => c.hidden_size / c.num_attention_heads.max(1),
    };
    let attention_bias = c.attention_bias.unwrap_or(false);
    let positions = Positions::Rope(rope_config(&c, path)?);
    Ok(ModelConfig {
        family,
        vocab_size: c.vocab_size,
        hidden_size: c.hidden_size,
        intermediate_size: c.intermediate_size,
        num_hidden_layers: c.num_hidden_layers,
        num_attention_heads: c.num_attention_heads,
        num_key_value_heads: c.num_key_value_heads.unwrap_or(c.num_attention_heads),
        head_dim: c.head_dim.unwrap_or(default_head_dim),
        max_position_embeddings: c.max_position_embeddings.unwrap_or(2048),
        norm: NormKind::Rms,
        norm_eps: c.rms_norm_eps.unwrap_or(1e-6),
        positions,
        qkv_bias: family == Family::Qwen2 || attention_bias,
        o_bias: family != Family::Qwen2 && attention_bias,
        mlp_bias: family == Family::Llama && c.mlp_bias.unwrap_or(false),
        qk_norm: family == Family::Qwen3,
        mlp: MlpKind::GatedSilu,
        tie_word_embeddings: c.tie_word_embeddings.unwrap_or(false),
        initializer_range: c.initializer_range.unwrap_or(0.02),
        eos_token_ids: token_ids(raw.get("eos_token_id")),
        bos_token_id: token_ids(raw.get("bos_token_id")).first().copied(),
        raw,
    })
}

/// Reads RoPE parameters from `rope_parameters` (transformers 5) or `rope_theta` + `rope_scaling` (4.x).
fn rope_config(c: &LlamaJson, path: &Path) -> Result<RopeConfig> {
    let params = c
        .rope_parameters
        .as_ref()
        .or(c.rope_scaling.as_ref())
        .filter(|v| v.is_object());
    let get = |key: &str| params.and_then(|p| p.get(key)).and_then(Value::as_f64);
    let theta = get("rope_theta").or(c.rope_theta).unwrap_or(10_000.0);
    let rope_type = params
        .and_then(|p| p.get("rope_type").or_else(|| p.get("type")))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let need = |key: &str| {
        get(key)
            .ok_or_else(|| unsupported(path, &format!("rope {rope_type} without {key}"), "null"))
    };
    let scaling = match rope_type {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear {
            factor: need("factor")?,
        },
        "llama3" => RopeScaling::Llama3 {
            factor: need("factor")?,
            low_freq_factor: need("low_freq_factor")?,
            high_freq_factor: need("high_freq_factor")?,
            original_max_position_embeddings: need("original_max_position_embeddings")?,
        },
        other => return Err(unsupported(path, "rope_type", other)),
    };
    Ok(RopeConfig { theta, scaling })
}

/// The Hugging Face key of a parameter, given its path in the model (`CausalLm`).
///
/// Paths mirror HF names without the `model.` prefix; Linear weights are stored `[out, in]` by
/// PyTorch and `[in, out]` by Burn, hence `transposed`.
pub(crate) fn hf_ref(path: &str) -> HfRef {
    let is_matrix = path.ends_with(".weight") && !path.starts_with("embed_tokens");
    let is_norm = path.contains("norm.");
    let transposed = is_matrix && !is_norm;
    if path.starts_with("lm_head.") {
        return HfRef::plain(path, transposed);
    }
    HfRef::plain(&format!("model.{path}"), transposed).or_unprefixed(path)
}
