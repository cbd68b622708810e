//! `config.json` → [`ModelConfig`]: the one normalised description every backbone is built from.
//!
//! Each family's file (`hf/llama.rs`, `hf/gpt2.rs`) deserialises its own `config.json` layout field
//! for field into this struct; [`crate::hf::families`] picks the family by `model_type`
//! ([`ModelConfig::from_file`]). Both the transformers 4.x layout (`rope_theta`,
//! `rope_scaling`) and the 5.x layout (`rope_parameters`) are read.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{CoreError, Result};

/// The backbone families this workspace implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Llama 2/3 (`model_type: "llama"`).
    Llama,
    /// Qwen2 / Qwen2.5 (`"qwen2"`): q/k/v biases.
    Qwen2,
    /// Qwen3 (`"qwen3"`): per-head q/k RMSNorm, explicit `head_dim`.
    Qwen3,
    /// GPT-2 (`"gpt2"`): learned positions, LayerNorm, tanh GELU, Conv1D layout.
    Gpt2,
}

/// Normalisation layer kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NormKind {
    /// RMSNorm (Llama, Qwen): `x / sqrt(mean(x²) + eps) * weight`, computed in f32.
    Rms,
    /// LayerNorm with bias (GPT-2).
    Layer,
}

/// Feed-forward kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MlpKind {
    /// `down(silu(gate(x)) * up(x))` (Llama, Qwen).
    GatedSilu,
    /// `proj(gelu(fc(x)))`, with tanh-approximated GELU when `tanh` is set (GPT-2's `gelu_new`).
    Gelu {
        /// Use the tanh approximation.
        tanh: bool,
    },
}

/// Rotary position embedding parameters (HF `rotate_half` convention).
#[derive(Debug, Clone, PartialEq)]
pub struct RopeConfig {
    /// Base θ.
    pub theta: f64,
    /// Frequency scaling.
    pub scaling: RopeScaling,
}

/// The rope scaling variants implemented.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// No scaling (`rope_type: "default"` or absent).
    None,
    /// Position interpolation: every inverse frequency divided by `factor`.
    Linear {
        /// The divisor.
        factor: f64,
    },
    /// Llama 3.1+ frequency-dependent scaling.
    Llama3 {
        /// Scale for low frequencies.
        factor: f64,
        /// Wavelength threshold factor for low frequencies.
        low_freq_factor: f64,
        /// Wavelength threshold factor for high frequencies.
        high_freq_factor: f64,
        /// The pre-training context length.
        original_max_position_embeddings: f64,
    },
}

/// How positions enter the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Positions {
    /// Rotary embeddings applied to q and k.
    Rope(RopeConfig),
    /// A learned absolute position table added to the input embeddings (GPT-2).
    Learned,
}

/// Everything needed to build a decoder-only LM, whatever its family.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// The family.
    pub family: Family,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Feed-forward width.
    pub intermediate_size: usize,
    /// Number of blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than query heads).
    pub num_key_value_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Longest position the model was built for (size of GPT-2's position table).
    pub max_position_embeddings: usize,
    /// Norm kind.
    pub norm: NormKind,
    /// Norm epsilon, from the config (never a library default).
    pub norm_eps: f64,
    /// Position scheme.
    pub positions: Positions,
    /// Biases on q/k/v projections.
    pub qkv_bias: bool,
    /// Bias on the attention output projection.
    pub o_bias: bool,
    /// Biases in the feed-forward layers.
    pub mlp_bias: bool,
    /// Per-head RMSNorm on q and k (Qwen3).
    pub qk_norm: bool,
    /// Feed-forward kind.
    pub mlp: MlpKind,
    /// Output head shares the token embedding.
    pub tie_word_embeddings: bool,
    /// Std of the normal init used for random weights.
    pub initializer_range: f64,
    /// End-of-sequence ids (`eos_token_id`, a number or a list).
    pub eos_token_ids: Vec<u32>,
    /// Beginning-of-sequence id.
    pub bos_token_id: Option<u32>,
    /// The `config.json` as read, written back unchanged on save.
    pub raw: Value,
}

impl ModelConfig {
    /// Checks the dimensions fit together.
    pub(crate) fn validate(&self, path: &Path) -> Result<()> {
        let invalid = |key: &str, reason: String| CoreError::InvalidConfig {
            path: path.into(),
            key: key.into(),
            reason,
        };
        for (key, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be positive".into()));
            }
        }
        if !self
            .num_attention_heads
            .is_multiple_of(self.num_key_value_heads)
        {
            return Err(invalid(
                "num_key_value_heads",
                format!(
                    "{} query heads are not a multiple of {} key/value heads",
                    self.num_attention_heads, self.num_key_value_heads
                ),
            ));
        }
        if matches!(self.positions, Positions::Rope(_)) && !self.head_dim.is_multiple_of(2) {
            return Err(invalid(
                "head_dim",
                format!(
                    "{} is odd; rotary embeddings need an even width",
                    self.head_dim
                ),
            ));
        }
        Ok(())
    }

    /// Total parameter count of the model this config builds.
    pub fn num_parameters(&self) -> usize {
        let (h, f, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let q = self.num_attention_heads * self.head_dim;
        let kv = self.num_key_value_heads * self.head_dim;
        let norm = if self.norm == NormKind::Layer {
            2 * h
        } else {
            h
        };
        let attn = h * (q + 2 * kv)
            + if self.qkv_bias { q + 2 * kv } else { 0 }
            + q * h
            + if self.o_bias { h } else { 0 }
            + if self.qk_norm { 2 * self.head_dim } else { 0 };
        let mlp = match self.mlp {
            MlpKind::GatedSilu => 3 * h * f + if self.mlp_bias { 2 * f + h } else { 0 },
            MlpKind::Gelu { .. } => 2 * h * f + if self.mlp_bias { f + h } else { 0 },
        };
        let layers = self.num_hidden_layers * (attn + mlp + 2 * norm);
        let positions = match self.positions {
            Positions::Learned => self.max_position_embeddings * h,
            Positions::Rope(_) => 0,
        };
        let head = if self.tie_word_embeddings { 0 } else { v * h };
        v * h + positions + layers + norm + head
    }
}

/// Reads a family's raw config struct out of the JSON value, naming the file in errors.
pub(crate) fn deserialize<T: serde::de::DeserializeOwned>(raw: &Value, path: &Path) -> Result<T> {
    T::deserialize(raw).map_err(|e| CoreError::json(path, &e))
}

/// `eos_token_id` may be a number, a list or null.
pub(crate) fn token_ids(value: Option<&Value>) -> Vec<u32> {
    match value {
        Some(Value::Number(n)) => n.as_u64().map(|v| vec![v as u32]).unwrap_or_default(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_u64().map(|v| v as u32))
            .collect(),
        _ => Vec::new(),
    }
}

/// Builds an "unsupported setting" error.
pub(crate) fn unsupported(path: &Path, key: &str, value: impl ToString) -> CoreError {
    CoreError::Unsupported {
        path: PathBuf::from(path),
        key: key.into(),
        value: value.to_string(),
    }
}
