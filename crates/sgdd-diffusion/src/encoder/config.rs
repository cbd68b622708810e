//! An encoder's `config.json` (BERT, RoBERTa, XLM-R, MiniLM) read field for field.

use std::path::Path;

use serde::Deserialize;

use crate::{Result, SgddError};

/// How positions are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PositionScheme {
    /// BERT: `0, 1, ..., seq - 1`.
    Absolute,
    /// RoBERTa: non-padding tokens get `padding_idx + 1, padding_idx + 2, ...`, padding gets
    /// `padding_idx` (transformers' `create_position_ids_from_input_ids`).
    PaddingOffset,
}

/// The fields of a BERT-family `config.json` the encoder needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EncoderConfig {
    /// `bert`, `roberta` or `xlm-roberta`.
    pub model_type: String,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width.
    pub hidden_size: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Feed-forward width.
    pub intermediate_size: usize,
    /// Rows of the position table.
    pub max_position_embeddings: usize,
    /// Rows of the token-type table.
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    /// LayerNorm ε.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Padding id (RoBERTa: 1, BERT: 0).
    #[serde(default)]
    pub pad_token_id: u32,
    /// Only `gelu` (erf) is implemented.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Only `absolute` is implemented.
    #[serde(default = "default_pos")]
    pub position_embedding_type: String,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}
fn default_pos() -> String {
    "absolute".into()
}

impl EncoderConfig {
    /// Reads and validates `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|e| latent_core::CoreError::io(path, e))?;
        Self::from_json_str(&text, path)
    }

    /// Parses a `config.json` text; `path` is used in messages.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        let config: Self =
            serde_json::from_str(text).map_err(|e| latent_core::CoreError::json(path, &e))?;
        if !matches!(
            config.model_type.as_str(),
            "bert" | "roberta" | "xlm-roberta"
        ) {
            return Err(SgddError::UnknownEncoder {
                path: path.into(),
                model_type: config.model_type,
            });
        }
        let bad =
            |key: &str, reason: String| SgddError::config(path.display().to_string(), key, reason);
        if config.hidden_act != "gelu" {
            return Err(bad(
                "hidden_act",
                format!("{:?} is not implemented (only \"gelu\")", config.hidden_act),
            ));
        }
        if config.position_embedding_type != "absolute" {
            return Err(bad(
                "position_embedding_type",
                format!(
                    "{:?} is not implemented (only \"absolute\")",
                    config.position_embedding_type
                ),
            ));
        }
        if config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return Err(bad(
                "num_attention_heads",
                format!(
                    "{} heads do not divide hidden_size {}",
                    config.num_attention_heads, config.hidden_size
                ),
            ));
        }
        Ok(config)
    }

    /// The position numbering of this family.
    pub fn positions(&self) -> PositionScheme {
        if self.model_type == "bert" {
            PositionScheme::Absolute
        } else {
            PositionScheme::PaddingOffset
        }
    }

    /// Longest input (RoBERTa loses `pad_token_id + 1` rows of its position table to the offset).
    pub fn max_tokens(&self) -> usize {
        match self.positions() {
            PositionScheme::Absolute => self.max_position_embeddings,
            PositionScheme::PaddingOffset => {
                self.max_position_embeddings - self.pad_token_id as usize - 1
            }
        }
    }

    /// Position ids of one row of token ids.
    pub fn position_ids(&self, ids: &[u32]) -> Vec<i64> {
        match self.positions() {
            PositionScheme::Absolute => (0..ids.len() as i64).collect(),
            PositionScheme::PaddingOffset => {
                let pad = self.pad_token_id;
                let mut count = 0i64;
                ids.iter()
                    .map(|&id| {
                        if id == pad {
                            pad as i64
                        } else {
                            count += 1;
                            count + pad as i64
                        }
                    })
                    .collect()
            }
        }
    }

    /// Parameter count of the encoder this config builds.
    pub fn num_parameters(&self) -> usize {
        let (h, f) = (self.hidden_size, self.intermediate_size);
        let embeddings =
            (self.vocab_size + self.max_position_embeddings + self.type_vocab_size) * h + 2 * h;
        let layer = 4 * (h * h + h) + 2 * h * f + f + h + 4 * h;
        embeddings + self.num_hidden_layers * layer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(model_type: &str, pad: u32) -> EncoderConfig {
        let text = format!(
            r#"{{"model_type": "{model_type}", "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
                "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 20, "pad_token_id": {pad}}}"#
        );
        EncoderConfig::from_json_str(&text, Path::new("config.json")).unwrap()
    }

    #[test]
    fn roberta_positions_skip_padding() {
        let c = config("roberta", 1);
        assert_eq!(c.position_ids(&[0, 5, 6, 2, 1, 1]), vec![2, 3, 4, 5, 1, 1]);
        assert_eq!(c.max_tokens(), 18);
        let b = config("bert", 0);
        assert_eq!(b.position_ids(&[101, 5, 102, 0]), vec![0, 1, 2, 3]);
    }

    #[test]
    fn unknown_model_type_and_bad_activation_are_named() {
        let err = EncoderConfig::from_json_str(
            r#"{"model_type": "gpt2", "vocab_size": 1, "hidden_size": 8, "num_hidden_layers": 1,
                "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 8}"#,
            Path::new("x/config.json"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("x/config.json") && err.contains("gpt2"),
            "{err}"
        );
        let err = EncoderConfig::from_json_str(
            r#"{"model_type": "bert", "vocab_size": 1, "hidden_size": 8, "num_hidden_layers": 1, "hidden_act": "relu",
                "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 8}"#,
            Path::new("y/config.json"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("hidden_act") && err.contains("relu"), "{err}");
    }
}
