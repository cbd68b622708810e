//! Bidirectional multi-head attention of the decoder: self-attention with RoPE (no causal mask) and
//! cross-attention from tokens to the semantic memory slots.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use latent_core::model::{FlatForward, Rope, RopeTables};

/// Query/key/value/output projections, `[width, width]` each.
#[derive(Module, Debug)]
pub struct MultiHead<B: Backend> {
    /// Queries.
    pub q: Linear<B>,
    /// Keys.
    pub k: Linear<B>,
    /// Values.
    pub v: Linear<B>,
    /// Output.
    pub o: Linear<B>,
    heads: usize,
}

impl<B: Backend> MultiHead<B> {
    /// Fresh projections.
    pub fn new(width: usize, heads: usize, std: f64, device: &B::Device) -> Self {
        Self {
            q: super::linear(width, width, std, device),
            k: super::linear(width, width, std, device),
            v: super::linear(width, width, std, device),
            o: super::linear(width, width, std, device),
            heads,
        }
    }

    fn split(&self, x: Tensor<B, 3>) -> Tensor<B, 4> {
        let [b, s, w] = x.dims();
        x.reshape([b, s, self.heads, w / self.heads])
            .swap_dims(1, 2)
    }

    /// Attention of `x` `[batch, seq, width]` over `memory` `[batch, m, width]` (the same tensor for
    /// self-attention); `rope` tables `[batch, heads, seq, head_dim]` rotate queries and keys
    /// (self-attention only) → `[batch, seq, width]`. Nothing is hidden: every position sees all.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        memory: Tensor<B, 3>,
        rope: Option<&RopeTables<B>>,
    ) -> Tensor<B, 3> {
        let [b, s, w] = x.dims();
        let mut q = self.split(self.q.forward_flat(x));
        let mut k = self.split(self.k.forward_flat(memory.clone()));
        let v = self.split(self.v.forward_flat(memory));
        if let Some(tables) = rope {
            q = Rope::apply(q, tables);
            k = Rope::apply(k, tables);
        }
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: false,
        };
        let out = attention(q, k, v, None, None, options)
            .swap_dims(1, 2)
            .reshape([b, s, w]);
        self.o.forward_flat(out)
    }
}
