//! One pre-norm decoder layer: self-attention (RoPE) → cross-attention to the semantic memory → FFN.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::gelu;
use latent_core::hf::config::NormKind;
use latent_core::model::{FlatForward, Norm, RopeTables};

use super::attention::MultiHead;
use super::config::DecoderConfig;

/// A decoder layer.
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    /// Norm before self-attention.
    pub norm_self: Norm<B>,
    /// Bidirectional self-attention with RoPE.
    pub self_attn: MultiHead<B>,
    /// Norm before cross-attention.
    pub norm_cross: Norm<B>,
    /// Cross-attention (queries: tokens; keys/values: the semantic memory).
    pub cross_attn: MultiHead<B>,
    /// Norm before the FFN.
    pub norm_ffn: Norm<B>,
    /// `[hidden, ffn]`.
    pub fc1: Linear<B>,
    /// `[ffn, hidden]`.
    pub fc2: Linear<B>,
}

impl<B: Backend> DecoderLayer<B> {
    /// A fresh layer.
    pub fn new(config: &DecoderConfig, device: &B::Device) -> Self {
        let (h, std, eps) = (config.hidden, config.init_std, config.norm_eps);
        let norm = || Norm::new(NormKind::Layer, h, eps, device);
        Self {
            norm_self: norm(),
            self_attn: MultiHead::new(h, config.heads, std, device),
            norm_cross: norm(),
            cross_attn: MultiHead::new(h, config.heads, std, device),
            norm_ffn: norm(),
            fc1: super::linear(h, config.ffn, std, device),
            fc2: super::linear(config.ffn, h, std, device),
        }
    }

    /// `x` `[batch, seq, hidden]`, `memory` `[batch, slots, hidden]` → `[batch, seq, hidden]`.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        memory: Tensor<B, 3>,
        rope: &RopeTables<B>,
    ) -> Tensor<B, 3> {
        let h = self.norm_self.forward(x.clone());
        let x = x + self.self_attn.forward(h.clone(), h, Some(rope));
        let h = self.norm_cross.forward(x.clone());
        let x = x + self.cross_attn.forward(h, memory, None);
        let h = self.norm_ffn.forward(x.clone());
        x + self.fc2.forward_flat(gelu(self.fc1.forward_flat(h)))
    }
}
