//! `adapter_config.json`: the PEFT LoRA settings this crate understands, and PEFT's rules for which
//! modules they select.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{CoreError, Result};

/// The LoRA settings of a PEFT `adapter_config.json` (the fields this crate uses; others are
/// ignored on read, and settings it cannot honour are refused, see [`LoraConfig::from_file`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// Always `"LORA"`.
    #[serde(default = "lora_type")]
    pub peft_type: String,
    /// PEFT task, `"CAUSAL_LM"` here.
    #[serde(default)]
    pub task_type: Option<String>,
    /// The base model the adapter was trained on (informational).
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    /// Rank `r`.
    pub r: usize,
    /// `lora_alpha`; the update is scaled by `lora_alpha / r`.
    pub lora_alpha: f64,
    /// Dropout on the adapter's input (training only).
    #[serde(default)]
    pub lora_dropout: f64,
    /// Hugging Face module names (or name suffixes after a dot) to adapt, e.g. `q_proj`, `c_attn`.
    pub target_modules: Vec<String>,
    /// Modules trained in full and saved with the adapter (PEFT matches them as plain name suffixes).
    #[serde(default)]
    pub modules_to_save: Option<Vec<String>>,
    /// Bias training: only `"none"` is supported.
    #[serde(default = "none")]
    pub bias: String,
    /// The base weights are stored `[in, out]` (GPT-2 `Conv1D`); the LoRA matrices are not affected.
    #[serde(default)]
    pub fan_in_fan_out: bool,
    /// rsLoRA: scale by `lora_alpha / sqrt(r)` instead of `lora_alpha / r`.
    #[serde(default)]
    pub use_rslora: bool,
    /// Written as PEFT does for a saved adapter.
    #[serde(default)]
    pub inference_mode: bool,
}

fn lora_type() -> String {
    "LORA".into()
}

fn none() -> String {
    "none".into()
}

/// Settings PEFT may write that would change the model in ways this crate does not implement:
/// `(key, value that is fine)`; any other value present in the file is refused.
const INERT: [(&str, &str); 10] = [
    ("peft_type", "\"LORA\""),
    ("bias", "\"none\""),
    ("use_dora", "false"),
    ("lora_bias", "false"),
    ("rank_pattern", "{}"),
    ("alpha_pattern", "{}"),
    ("layers_to_transform", "null"),
    ("layer_replication", "null"),
    ("target_parameters", "null"),
    ("trainable_token_indices", "null"),
];

impl LoraConfig {
    /// `r`, `lora_alpha` and the target module names; no dropout, nothing else saved.
    pub fn new(r: usize, lora_alpha: f64, target_modules: &[&str]) -> Self {
        Self {
            peft_type: lora_type(),
            task_type: Some("CAUSAL_LM".into()),
            base_model_name_or_path: None,
            r,
            lora_alpha,
            lora_dropout: 0.0,
            target_modules: target_modules.iter().map(|s| s.to_string()).collect(),
            modules_to_save: None,
            bias: none(),
            fan_in_fan_out: false,
            use_rslora: false,
            inference_mode: false,
        }
    }

    /// Reads `adapter_config.json`, refusing settings that would change the model in ways this
    /// crate does not implement (DoRA, bias training, per-module ranks, a regex `target_modules`, …).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| CoreError::io(path, e))?;
        let raw: Value = serde_json::from_str(&text).map_err(|e| CoreError::json(path, &e))?;
        for (key, fine) in INERT {
            let fine: Value = serde_json::from_str(fine).expect("valid JSON literal");
            match raw.get(key) {
                Some(v) if *v != fine => {
                    return Err(CoreError::Unsupported {
                        path: path.into(),
                        key: key.into(),
                        value: v.to_string(),
                    })
                }
                _ => {}
            }
        }
        if let Some(v @ Value::String(_)) = raw.get("target_modules") {
            return Err(CoreError::Unsupported {
                path: path.into(),
                key: "target_modules (a regular expression)".into(),
                value: v.to_string(),
            });
        }
        let config: Self = serde_json::from_value(raw).map_err(|e| CoreError::json(path, &e))?;
        config
            .check()
            .map_err(|(key, reason)| CoreError::InvalidConfig {
                path: path.into(),
                key: key.into(),
                reason,
            })?;
        Ok(config)
    }

    /// Checks values an in-memory config could get wrong: `(key, reason)` of the first problem.
    pub fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        if self.r == 0 {
            return Err(("r", "must be at least 1".into()));
        }
        if !(0.0..1.0).contains(&self.lora_dropout) {
            return Err((
                "lora_dropout",
                format!("{} is not in [0, 1)", self.lora_dropout),
            ));
        }
        if self.target_modules.is_empty() {
            return Err(("target_modules", "is empty".into()));
        }
        Ok(())
    }

    /// The factor of the update: `lora_alpha / r`, or `lora_alpha / sqrt(r)` with rsLoRA.
    pub fn scaling(&self) -> f64 {
        let r = self.r as f64;
        self.lora_alpha / if self.use_rslora { r.sqrt() } else { r }
    }

    /// Whether PEFT would wrap the module named `module` (e.g. `model.layers.0.self_attn.q_proj`):
    /// a target name equal to it or to a dot-separated suffix, unless a module to save names it.
    pub fn targets(&self, module: &str) -> bool {
        let dotted = format!(".{module}.");
        let saved = self
            .saved_names()
            .any(|m| dotted.contains(&format!(".{m}.")));
        !saved
            && self
                .target_modules
                .iter()
                .any(|t| module == t || module.ends_with(&format!(".{t}")))
    }

    /// Whether `module` is trained in full and saved with the adapter (PEFT: its name ends with
    /// one of `modules_to_save`, so `norm` also selects `input_layernorm`).
    pub fn saves(&self, module: &str) -> bool {
        self.saved_names().any(|m| module.ends_with(m))
    }

    fn saved_names(&self) -> impl Iterator<Item = &str> {
        self.modules_to_save.iter().flatten().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_modules_like_peft() {
        let mut c = LoraConfig::new(4, 8.0, &["q_proj", "c_attn"]);
        c.modules_to_save = Some(vec!["norm".into()]);
        assert!(c.targets("model.layers.0.self_attn.q_proj"));
        assert!(c.targets("transformer.h.1.attn.c_attn"));
        assert!(!c.targets("model.layers.0.self_attn.k_proj"));
        assert!(!c.targets("model.layers.0.self_attn.xq_proj"));
        assert!(c.saves("model.norm"));
        assert!(c.saves("model.layers.0.input_layernorm"));
        assert!(!c.saves("model.layers.0.self_attn.q_proj"));
        assert_eq!(c.scaling(), 2.0);
    }
}
