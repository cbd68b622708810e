//! GPT-2: its `config.json` layout and Hugging Face weight names.
//!
//! GPT-2 is built from the same blocks as Llama with different switches: learned absolute
//! positions, LayerNorm with bias, tanh-approximated GELU, biases everywhere, tied output head.
//! Its `Conv1D` weights are stored `[in, out]` (Burn's layout already), and the fused `c_attn`
//! projection is split into q/k/v views at load and concatenated again at save.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::weight_names::HfRef;
use crate::hf::config::{
    deserialize, token_ids, unsupported, Family, MlpKind, ModelConfig, NormKind, Positions,
};
use crate::Result;

/// GPT-2 `config.json`, field for field (only the fields the model uses).
#[derive(Debug, Deserialize)]
struct Gpt2Json {
    vocab_size: usize,
    n_positions: usize,
    n_embd: usize,
    n_layer: usize,
    n_head: usize,
    n_inner: Option<usize>,
    activation_function: Option<String>,
    layer_norm_epsilon: Option<f64>,
    scale_attn_weights: Option<bool>,
    scale_attn_by_inverse_layer_idx: Option<bool>,
    add_cross_attention: Option<bool>,
    tie_word_embeddings: Option<bool>,
    initializer_range: Option<f64>,
}

/// Converts a GPT-2 `config.json` into a [`ModelConfig`].
pub(crate) fn parse_config(raw: Value, path: &Path) -> Result<ModelConfig> {
    let c: Gpt2Json = deserialize(&raw, path)?;
    let act = c.activation_function.as_deref().unwrap_or("gelu_new");
    let tanh = match act {
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => true,
        "gelu" => false,
        other => return Err(unsupported(path, "activation_function", other)),
    };
    if c.scale_attn_weights == Some(false) {
        return Err(unsupported(path, "scale_attn_weights", false));
    }
    if c.scale_attn_by_inverse_layer_idx == Some(true) {
        return Err(unsupported(path, "scale_attn_by_inverse_layer_idx", true));
    }
    if c.add_cross_attention == Some(true) {
        return Err(unsupported(path, "add_cross_attention", true));
    }
    Ok(ModelConfig {
        family: Family::Gpt2,
        vocab_size: c.vocab_size,
        hidden_size: c.n_embd,
        intermediate_size: c.n_inner.unwrap_or(4 * c.n_embd),
        num_hidden_layers: c.n_layer,
        num_attention_heads: c.n_head,
        num_key_value_heads: c.n_head,
        head_dim: c.n_embd / c.n_head.max(1),
        max_position_embeddings: c.n_positions,
        norm: NormKind::Layer,
        norm_eps: c.layer_norm_epsilon.unwrap_or(1e-5),
        positions: Positions::Learned,
        qkv_bias: true,
        o_bias: true,
        mlp_bias: true,
        qk_norm: false,
        mlp: MlpKind::Gelu { tanh },
        tie_word_embeddings: c.tie_word_embeddings.unwrap_or(true),
        initializer_range: c.initializer_range.unwrap_or(0.02),
        eos_token_ids: token_ids(raw.get("eos_token_id")),
        bos_token_id: token_ids(raw.get("bos_token_id")).first().copied(),
        raw,
    })
}

/// The Hugging Face key of a parameter, given its path in the model (`CausalLm`).
pub(crate) fn hf_ref(path: &str) -> HfRef {
    if let Some(rest) = path.strip_prefix("lm_head.") {
        return HfRef::plain(&format!("lm_head.{rest}"), rest == "weight");
    }
    let mut parts: Vec<&str> = path.split('.').collect();
    let mut part = None;
    if let [first, ..] = parts.as_slice() {
        match *first {
            "embed_tokens" => parts[0] = "wte",
            "embed_positions" => parts[0] = "wpe",
            "norm" => parts[0] = "ln_f",
            "layers" => {
                parts[0] = "h";
                let renamed = match (parts.get(2).copied(), parts.get(3).copied()) {
                    (Some("input_layernorm"), _) => Some(("ln_1", None)),
                    (Some("post_attention_layernorm"), _) => Some(("ln_2", None)),
                    (Some("self_attn"), Some("q_proj")) => Some(("attn.c_attn", Some(0))),
                    (Some("self_attn"), Some("k_proj")) => Some(("attn.c_attn", Some(1))),
                    (Some("self_attn"), Some("v_proj")) => Some(("attn.c_attn", Some(2))),
                    (Some("self_attn"), Some("o_proj")) => Some(("attn.c_proj", None)),
                    (Some("mlp"), Some("up_proj")) => Some(("mlp.c_fc", None)),
                    (Some("mlp"), Some("down_proj")) => Some(("mlp.c_proj", None)),
                    _ => None,
                };
                if let Some((name, split)) = renamed {
                    let consumed = if name.starts_with("ln_") { 1 } else { 2 };
                    parts.splice(2..2 + consumed, [name]);
                    part = split;
                }
            }
            _ => {}
        }
    }
    let key = parts.join(".");
    let mut r = HfRef::plain(&format!("transformer.{key}"), false).or_unprefixed(&key);
    r.part = part.map(|index| (index, 3));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_paths_to_hf_keys() {
        let r = hf_ref("layers.3.self_attn.k_proj.bias");
        assert_eq!(
            r.keys,
            ["transformer.h.3.attn.c_attn.bias", "h.3.attn.c_attn.bias"]
        );
        assert_eq!(r.part, Some((1, 3)));
        let r = hf_ref("layers.0.mlp.down_proj.weight");
        assert_eq!(r.keys[0], "transformer.h.0.mlp.c_proj.weight");
        assert!(!r.transposed);
        assert_eq!(
            hf_ref("layers.1.input_layernorm.weight").keys[0],
            "transformer.h.1.ln_1.weight"
        );
        assert_eq!(
            hf_ref("embed_positions.weight").keys[0],
            "transformer.wpe.weight"
        );
        assert_eq!(hf_ref("norm.bias").keys[0], "transformer.ln_f.bias");
    }
}
