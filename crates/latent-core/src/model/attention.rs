//! Causal self-attention with grouped key/value heads, optional per-head q/k norm and RoPE.

use burn::prelude::*;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::DType;

use super::cast::to_f32;
use super::kv_cache::LayerKv;
use super::linear::init_linear;
use super::lora_linear::{LoraLinear, LoraPair};
use super::norm::Norm;
use super::rope::{Rope, RopeTables};
use crate::hf::config::{ModelConfig, NormKind};

/// Self-attention of one block. GPT-2's fused `c_attn` is held as three views `q/k/v_proj`, and a
/// LoRA on `c_attn` as one adapter [`Attention::qkv_lora`] over the three.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// `[hidden, heads * head_dim]`.
    pub q_proj: LoraLinear<B>,
    /// `[hidden, kv_heads * head_dim]`.
    pub k_proj: LoraLinear<B>,
    /// `[hidden, kv_heads * head_dim]`.
    pub v_proj: LoraLinear<B>,
    /// `[heads * head_dim, hidden]`.
    pub o_proj: LoraLinear<B>,
    /// A LoRA on the fused q|k|v projection (GPT-2's `c_attn`): `[hidden, r]`, `[r, q + 2 kv]`; its
    /// update's column blocks are added to the q, k and v outputs.
    pub qkv_lora: Option<LoraPair<B>>,
    /// Per-head RMSNorm of queries, `[head_dim]` (Qwen3).
    pub q_norm: Option<Norm<B>>,
    /// Per-head RMSNorm of keys, `[head_dim]` (Qwen3).
    pub k_norm: Option<Norm<B>>,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
}

impl<B: Backend> Attention<B> {
    /// A randomly initialised (lazy) attention for `config`.
    pub fn new(config: &ModelConfig, device: &B::Device) -> Self {
        let (h, d, std) = (
            config.hidden_size,
            config.head_dim,
            config.initializer_range,
        );
        let q = config.num_attention_heads * d;
        let kv = config.num_key_value_heads * d;
        let qk_norm = || {
            config
                .qk_norm
                .then(|| Norm::new(NormKind::Rms, d, config.norm_eps, device))
        };
        Self {
            q_proj: init_linear(h, q, config.qkv_bias, std, device).into(),
            k_proj: init_linear(h, kv, config.qkv_bias, std, device).into(),
            v_proj: init_linear(h, kv, config.qkv_bias, std, device).into(),
            o_proj: init_linear(q, h, config.o_bias, std, device).into(),
            qkv_lora: None,
            q_norm: qk_norm(),
            k_norm: qk_norm(),
            num_heads: config.num_attention_heads,
            num_kv_heads: config.num_key_value_heads,
            head_dim: d,
        }
    }

    /// Output widths of the q, k and v projections: `[heads * head_dim, kv_heads * head_dim, kv_heads * head_dim]`.
    pub fn qkv_widths(&self) -> [usize; 3] {
        let kv = self.num_kv_heads * self.head_dim;
        [self.num_heads * self.head_dim, kv, kv]
    }

    /// Splits `[batch, seq, heads * head_dim]` into `[batch, heads, seq, head_dim]`, normalising each head.
    fn heads(&self, x: Tensor<B, 3>, heads: usize, norm: &Option<Norm<B>>) -> Tensor<B, 4> {
        let [b, s, _] = x.dims();
        let x = x.reshape([b, s, heads, self.head_dim]);
        let x = match norm {
            Some(norm) => norm.forward(x),
            None => x,
        };
        x.swap_dims(1, 2)
    }

    /// Repeats each key/value head for its group of query heads: `[b, kv, s, d]` → `[b, heads, s, d]`.
    fn expand_kv(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let groups = self.num_heads / self.num_kv_heads;
        if groups == 1 {
            return x;
        }
        let [b, kv, s, d] = x.dims();
        x.unsqueeze_dim::<5>(2)
            .repeat_dim(2, groups)
            .reshape([b, kv * groups, s, d])
    }

    /// Queries `[b, heads, s, d]`, keys and values `[b, kv_heads, s, d]` of `x` `[b, s, hidden]`,
    /// with per-head norms and rotary embeddings applied.
    fn project(
        &self,
        x: Tensor<B, 3>,
        rope: Option<&(RopeTables<B>, RopeTables<B>)>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>) {
        let mut q = self.q_proj.forward(x.clone());
        let mut k = self.k_proj.forward(x.clone());
        let mut v = self.v_proj.forward(x.clone());
        if let Some(lora) = &self.qkv_lora {
            // [b, s, q + 2 kv], split into the three column blocks.
            let delta = lora.delta(x);
            let [qw, kw, _] = self.qkv_widths();
            q = q + delta.clone().narrow(2, 0, qw);
            k = k + delta.clone().narrow(2, qw, kw);
            v = v + delta.narrow(2, qw + kw, kw);
        }
        let q = self.heads(q, self.num_heads, &self.q_norm);
        let k = self.heads(k, self.num_kv_heads, &self.k_norm);
        let v = self.heads(v, self.num_kv_heads, &None);
        match rope {
            Some((q_tables, k_tables)) => (Rope::apply(q, q_tables), Rope::apply(k, k_tables), v),
            None => (q, k, v),
        }
    }

    /// Causal attention.
    ///
    /// Shapes: `x` `[batch, seq, hidden]`; `rope` tables for query heads and for key/value heads
    /// (`[batch, heads, seq, head_dim]` and `[batch, kv_heads, seq, head_dim]`);
    /// `hide` `[batch, heads, seq, seq]` (true = masked key) → `[batch, seq, hidden]`.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: Option<&(RopeTables<B>, RopeTables<B>)>,
        hide: Option<Tensor<B, 4, Bool>>,
    ) -> Tensor<B, 3> {
        let [b, s, _] = x.dims();
        let (q, k, v) = self.project(x, rope);
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: true,
        };
        // Scores and softmax in f32 whatever the compute dtype (Burn's differentiable attention
        // computes them in its inputs' dtype).
        let dtype = q.dtype();
        let (k, v) = (to_f32(self.expand_kv(k)), to_f32(self.expand_kv(v)));
        let out = attention(to_f32(q), k, v, hide, None, options);
        let out = if dtype == DType::F32 {
            out
        } else {
            out.cast(dtype)
        };
        let out = out
            .swap_dims(1, 2)
            .reshape([b, s, self.num_heads * self.head_dim]);
        self.o_proj.forward(out)
    }

    /// Attention of `n` new positions against the cache; their keys and values are written at slots
    /// `start..start + n` of `kv`, which is returned.
    ///
    /// Shapes: `x` `[batch, n, hidden]`; `rope` tables `[batch, heads|kv_heads, n, head_dim]`;
    /// `mask` `[batch, kv_heads, groups · n, capacity]` from [`crate::infer::KvCache::query_mask`]
    /// (true = hidden) → `[batch, n, hidden]`. Query heads are
    /// grouped onto their key/value head instead of repeating the cache, so nothing of the size of
    /// the cache is copied.
    pub fn forward_cached(
        &self,
        x: Tensor<B, 3>,
        rope: Option<&(RopeTables<B>, RopeTables<B>)>,
        kv: LayerKv<B>,
        start: usize,
        mask: &Tensor<B, 4, Bool>,
    ) -> (Tensor<B, 3>, LayerKv<B>) {
        let [b, n, _] = x.dims();
        let (heads, kv_heads, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let (q, k, v) = self.project(x, rope);
        let slots = [0..b, 0..kv_heads, start..start + n, 0..d];
        let kv = LayerKv {
            k: kv.k.slice_assign(slots.clone(), k),
            v: kv.v.slice_assign(slots, v),
        };
        let q = q.reshape([b, kv_heads, heads / kv_heads * n, d]);
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: false,
        };
        let out = attention(
            q,
            kv.k.clone(),
            kv.v.clone(),
            Some(mask.clone()),
            None,
            options,
        );
        let out = out
            .reshape([b, heads, n, d])
            .swap_dims(1, 2)
            .reshape([b, n, heads * d]);
        (self.o_proj.forward(out), kv)
    }
}
