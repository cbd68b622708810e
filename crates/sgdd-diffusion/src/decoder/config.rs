//! Decoder sizes and initialisation choices (the `model:` section of a run config).

use serde::{Deserialize, Serialize};

/// How the token embedding (and so the tied head) starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingInit {
    /// Normal(0, `init_std`).
    Random,
    /// The encoder's token embeddings mapped to the decoder width by their top principal directions
    /// (see [`super::embed_init`]).
    EncoderPca,
}

/// The diffusion decoder's shape. Vocabulary size, mask id and encoder width are not here: they come
/// from the encoder's tokenizer and config (never a literal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecoderConfig {
    /// Transformer layers.
    pub layers: usize,
    /// Model width.
    pub hidden: usize,
    /// Attention heads.
    pub heads: usize,
    /// Feed-forward width.
    pub ffn: usize,
    /// Sequence length (special tokens included; shorter sequences are padded with the pad token,
    /// which the decoder learns to place).
    pub max_len: usize,
    /// RoPE base θ.
    pub rope_theta: f64,
    /// Add a learned absolute position embedding (`[max_len, hidden]`) to the token stream, besides
    /// RoPE in self-attention. RoPE alone cannot tell the positions of a fully masked input apart:
    /// every value vector is the same, so every position gets the same output and greedy MaskGIT
    /// commits one word everywhere (only attention to the start token breaks the tie, weakly).
    pub absolute_positions: bool,
    /// Memory slots the semantic vector is projected to (keys/values of the cross-attention).
    /// With 1 slot the cross-attention output is the same for every position.
    pub cond_tokens: usize,
    /// A LayerNorm (learned scale and shift) on the semantic vector, after the null vector is
    /// substituted and before the projection to the memory slots: the encoder's vectors reach the
    /// decoder standardised whatever their scale (off in design 004).
    pub cond_norm: bool,
    /// Std of the normal initialisation.
    pub init_std: f64,
    /// LayerNorm ε.
    pub norm_eps: f64,
    /// Token embedding initialisation.
    pub embedding_init: EmbeddingInit,
}

impl Default for DecoderConfig {
    /// Design 004's decoder: 6 layers, 512 wide, 8 heads, FFN 2048, length 64.
    fn default() -> Self {
        Self {
            layers: 6,
            hidden: 512,
            heads: 8,
            ffn: 2048,
            max_len: 64,
            rope_theta: 10_000.0,
            absolute_positions: true,
            cond_tokens: 1,
            cond_norm: false,
            init_std: 0.02,
            norm_eps: 1e-5,
            embedding_init: EmbeddingInit::EncoderPca,
        }
    }
}

impl DecoderConfig {
    /// Checks the sizes fit together; the error names the key.
    pub fn validate(&self, source: &str) -> crate::Result<()> {
        let bad = |key: &str, reason: String| {
            crate::SgddError::config(source, format!("model.{key}"), reason)
        };
        for (key, v) in [
            ("layers", self.layers),
            ("hidden", self.hidden),
            ("heads", self.heads),
            ("ffn", self.ffn),
            ("cond_tokens", self.cond_tokens),
        ] {
            if v == 0 {
                return Err(bad(key, "must be positive".into()));
            }
        }
        if self.max_len < 3 {
            return Err(bad(
                "max_len",
                format!(
                    "{} leaves no room between the start and end tokens",
                    self.max_len
                ),
            ));
        }
        if !self.hidden.is_multiple_of(self.heads) || !(self.hidden / self.heads).is_multiple_of(2)
        {
            return Err(bad(
                "heads",
                format!(
                    "{} heads must divide hidden {} into even head widths (RoPE)",
                    self.heads, self.hidden
                ),
            ));
        }
        Ok(())
    }

    /// Trainable parameters of the model built with `vocab` tokens and an encoder of width `cond_dim`.
    pub fn num_parameters(&self, vocab: usize, cond_dim: usize) -> usize {
        let (h, f) = (self.hidden, self.ffn);
        let attn = 4 * (h * h + h);
        let norm = 2 * h;
        let layer = 2 * attn + (h * f + f + f * h + h) + 3 * norm;
        let time = 2 * (h * h + h);
        let project = cond_dim * self.cond_tokens * h + self.cond_tokens * h;
        let positions = if self.absolute_positions {
            self.max_len * h
        } else {
            0
        };
        let cond_norm = if self.cond_norm { 2 * cond_dim } else { 0 };
        vocab * h + positions + time + cond_norm + project + cond_dim + self.layers * layer + norm
    }
}
