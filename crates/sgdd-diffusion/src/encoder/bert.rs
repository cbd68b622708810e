//! The BERT-family encoder (BERT, RoBERTa, XLM-R, MiniLM): post-norm transformer layers with
//! absolute learned positions and erf GELU, exactly as transformers' `BertModel`/`RobertaModel`.

use burn::nn::{Embedding, Linear};
use burn::prelude::*;
use burn::tensor::activation::gelu;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use latent_core::hf::safetensors::Checkpoint;
use latent_core::model::Norm;

use super::config::EncoderConfig;
use super::weights::Weights;
use crate::Result;

/// Self-attention + output projection + residual LayerNorm (`attention.self`, `attention.output`).
#[derive(Module, Debug)]
pub struct BertAttention<B: Backend> {
    /// `[hidden, hidden]`.
    pub query: Linear<B>,
    /// `[hidden, hidden]`.
    pub key: Linear<B>,
    /// `[hidden, hidden]`.
    pub value: Linear<B>,
    /// `[hidden, hidden]`.
    pub output: Linear<B>,
    /// Post-residual LayerNorm.
    pub norm: Norm<B>,
    heads: usize,
}

impl<B: Backend> BertAttention<B> {
    /// `x` `[batch, seq, hidden]`, `hide` `[batch, heads, seq, seq]` (true = padding key) →
    /// `[batch, seq, hidden]`.
    pub fn forward(&self, x: Tensor<B, 3>, hide: Tensor<B, 4, Bool>) -> Tensor<B, 3> {
        let [b, s, h] = x.dims();
        let d = h / self.heads;
        let split = |t: Tensor<B, 3>| t.reshape([b, s, self.heads, d]).swap_dims(1, 2);
        let q = split(self.query.forward(x.clone()));
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x.clone()));
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: false,
        };
        let out = attention(q, k, v, Some(hide), None, options)
            .swap_dims(1, 2)
            .reshape([b, s, h]);
        self.norm.forward(self.output.forward(out) + x)
    }
}

/// One encoder layer: attention, then `intermediate` (GELU) and `output` with residual LayerNorm.
#[derive(Module, Debug)]
pub struct BertLayer<B: Backend> {
    /// Attention block.
    pub attention: BertAttention<B>,
    /// `[hidden, intermediate]`.
    pub intermediate: Linear<B>,
    /// `[intermediate, hidden]`.
    pub output: Linear<B>,
    /// Post-residual LayerNorm.
    pub norm: Norm<B>,
}

impl<B: Backend> BertLayer<B> {
    /// `[batch, seq, hidden]` → `[batch, seq, hidden]`.
    pub fn forward(&self, x: Tensor<B, 3>, hide: Tensor<B, 4, Bool>) -> Tensor<B, 3> {
        let x = self.attention.forward(x, hide);
        let y = self
            .output
            .forward(gelu(self.intermediate.forward(x.clone())));
        self.norm.forward(y + x)
    }
}

/// The encoder: embeddings (word + position + token type, LayerNorm) and the layers; no pooler.
#[derive(Module, Debug)]
pub struct BertModel<B: Backend> {
    /// `[vocab, hidden]`.
    pub word_embeddings: Embedding<B>,
    /// `[max_positions, hidden]`.
    pub position_embeddings: Embedding<B>,
    /// `[type_vocab, hidden]`.
    pub token_type_embeddings: Embedding<B>,
    /// Embedding LayerNorm.
    pub embeddings_norm: Norm<B>,
    /// The layers.
    pub layers: Vec<BertLayer<B>>,
    heads: usize,
}

fn embedding<B: Backend>(
    w: &Weights<'_, B>,
    key: &str,
    rows: usize,
    width: usize,
) -> Result<Embedding<B>> {
    Ok(Embedding {
        weight: burn::module::Param::from_tensor(w.tensor(key, [rows, width])?),
    })
}

impl<B: Backend> BertModel<B> {
    /// Builds the encoder from a checkpoint (keys as transformers saves `BertModel`/`RobertaModel`,
    /// optionally under `bert.`/`roberta.`; the pooler and MLM head are ignored).
    pub fn load(
        config: &EncoderConfig,
        checkpoint: &Checkpoint,
        device: &B::Device,
    ) -> Result<Self> {
        let w = Weights::<B>::new(checkpoint, device)?;
        let (h, f, eps) = (
            config.hidden_size,
            config.intermediate_size,
            config.layer_norm_eps,
        );
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let p = format!("encoder.layer.{i}");
                Ok(BertLayer {
                    attention: BertAttention {
                        query: w.linear(&format!("{p}.attention.self.query"), h, h)?,
                        key: w.linear(&format!("{p}.attention.self.key"), h, h)?,
                        value: w.linear(&format!("{p}.attention.self.value"), h, h)?,
                        output: w.linear(&format!("{p}.attention.output.dense"), h, h)?,
                        norm: w.layer_norm(&format!("{p}.attention.output.LayerNorm"), h, eps)?,
                        heads: config.num_attention_heads,
                    },
                    intermediate: w.linear(&format!("{p}.intermediate.dense"), h, f)?,
                    output: w.linear(&format!("{p}.output.dense"), f, h)?,
                    norm: w.layer_norm(&format!("{p}.output.LayerNorm"), h, eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            word_embeddings: embedding(
                &w,
                "embeddings.word_embeddings.weight",
                config.vocab_size,
                h,
            )?,
            position_embeddings: embedding(
                &w,
                "embeddings.position_embeddings.weight",
                config.max_position_embeddings,
                h,
            )?,
            token_type_embeddings: embedding(
                &w,
                "embeddings.token_type_embeddings.weight",
                config.type_vocab_size,
                h,
            )?,
            embeddings_norm: w.layer_norm("embeddings.LayerNorm", h, eps)?,
            layers,
            heads: config.num_attention_heads,
        })
    }

    /// Last hidden state. Shapes: `ids`, `positions` `[batch, seq]`, `mask` `[batch, seq]` (1 = token,
    /// 0 = padding) → `[batch, seq, hidden]`. Token types are all 0.
    pub fn forward(
        &self,
        ids: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
        mask: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3> {
        let [b, s] = ids.dims();
        let types = Tensor::<B, 2, Int>::zeros([b, s], &ids.device());
        let x = self.word_embeddings.forward(ids)
            + self.position_embeddings.forward(positions)
            + self.token_type_embeddings.forward(types);
        let mut x = self.embeddings_norm.forward(x);
        // [b, s] → [b, heads, s, s], true where the key is padding (materialised: Flex is slow on
        // broadcast element-wise ops).
        let hide = mask
            .equal_elem(0)
            .reshape([b, 1, 1, s])
            .expand([b, self.heads, s, s]);
        for layer in &self.layers {
            x = layer.forward(x, hide.clone());
        }
        x
    }

    /// The token embedding matrix `[vocab, hidden]` (to initialise a decoder's embedding).
    pub fn token_embeddings(&self) -> Tensor<B, 2> {
        self.word_embeddings.weight.val()
    }
}
