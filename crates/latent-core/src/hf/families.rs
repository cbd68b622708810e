//! The families by name: `config.json`'s `model_type` → the family's parser, and a parameter path →
//! its checkpoint key under the family's naming. Each family's knowledge lives in its own file
//! (`llama.rs` for Llama / Qwen2 / Qwen3, `gpt2.rs`); this file only dispatches.

use std::path::Path;

use serde_json::Value;

use super::config::{Family, ModelConfig};
use super::weight_names::HfRef;
use super::{gpt2, llama};
use crate::{CoreError, Result};

impl ModelConfig {
    /// Reads and validates a `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| CoreError::io(path, e))?;
        Self::from_json_str(&text, path)
    }

    /// Parses a `config.json` text; `path` is used in error messages only.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        let raw: Value = serde_json::from_str(text).map_err(|e| CoreError::json(path, &e))?;
        let model_type = raw
            .get("model_type")
            .and_then(Value::as_str)
            .ok_or_else(|| CoreError::Json {
                path: path.into(),
                message: "missing field `model_type`".into(),
            })?
            .to_string();
        let config = match model_type.as_str() {
            "llama" => llama::parse_config(raw, Family::Llama, path)?,
            "qwen2" => llama::parse_config(raw, Family::Qwen2, path)?,
            "qwen3" => llama::parse_config(raw, Family::Qwen3, path)?,
            "gpt2" => gpt2::parse_config(raw, path)?,
            _ => {
                return Err(CoreError::UnknownModelType {
                    path: path.into(),
                    model_type,
                })
            }
        };
        config.validate(path)?;
        Ok(config)
    }
}

/// Maps a parameter path of the model (`CausalLm`; e.g. `layers.0.self_attn.q_proj.weight`) to its HF key.
pub fn hf_ref(family: Family, path: &str) -> HfRef {
    match family {
        Family::Gpt2 => gpt2::hf_ref(path),
        Family::Llama | Family::Qwen2 | Family::Qwen3 => llama::hf_ref(path),
    }
}
