//! One pre-norm decoder block: `x + attn(norm(x))`, then `x + mlp(norm(x))`.

use burn::prelude::*;

use super::attention::Attention;
use super::kv_cache::LayerKv;
use super::mlp::Mlp;
use super::norm::Norm;
use super::rope::RopeTables;
use crate::hf::config::ModelConfig;

/// A decoder block. GPT-2's `ln_1`/`ln_2` are `input_layernorm`/`post_attention_layernorm` here.
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    /// Norm before attention.
    pub input_layernorm: Norm<B>,
    /// Self-attention.
    pub self_attn: Attention<B>,
    /// Norm before the feed-forward block.
    pub post_attention_layernorm: Norm<B>,
    /// Feed-forward block.
    pub mlp: Mlp<B>,
}

impl<B: Backend> DecoderLayer<B> {
    /// A randomly initialised (lazy) block.
    pub fn new(config: &ModelConfig, device: &B::Device) -> Self {
        let norm = || Norm::new(config.norm, config.hidden_size, config.norm_eps, device);
        Self {
            input_layernorm: norm(),
            self_attn: Attention::new(config, device),
            post_attention_layernorm: norm(),
            mlp: Mlp::new(config, device),
        }
    }

    /// Shapes: `x` `[batch, seq, hidden]`, see [`Attention::forward`] for `rope` and `hide`
    /// → `[batch, seq, hidden]`.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: Option<&(RopeTables<B>, RopeTables<B>)>,
        hide: Option<Tensor<B, 4, Bool>>,
    ) -> Tensor<B, 3> {
        let attn = self
            .self_attn
            .forward(self.input_layernorm.forward(x.clone()), rope, hide);
        self.feed_forward(x + attn)
    }

    /// The block for `n` new positions against a key/value cache (see [`Attention::forward_cached`]).
    pub fn forward_cached(
        &self,
        x: Tensor<B, 3>,
        rope: Option<&(RopeTables<B>, RopeTables<B>)>,
        kv: LayerKv<B>,
        start: usize,
        mask: &Tensor<B, 4, Bool>,
    ) -> (Tensor<B, 3>, LayerKv<B>) {
        let normed = self.input_layernorm.forward(x.clone());
        let (attn, kv) = self.self_attn.forward_cached(normed, rope, kv, start, mask);
        (self.feed_forward(x + attn), kv)
    }

    /// The second residual branch: `x + mlp(norm(x))`.
    fn feed_forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        x.clone() + self.mlp.forward(self.post_attention_layernorm.forward(x))
    }
}
