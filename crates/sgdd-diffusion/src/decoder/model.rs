//! The SGDD denoiser: token embedding + timestep embedding, decoder layers attending to the
//! projected semantic vector, final norm and a head tied to the token embedding. It also holds the
//! trainable projection of the encoder vector and the learned null vector of classifier-free
//! guidance, so everything trainable lives in this one module.

use burn::module::{Initializer, Param};
use burn::nn::{Embedding, Linear};
use burn::prelude::*;
use burn::tensor::DType;
use latent_core::hf::config::{NormKind, RopeConfig, RopeScaling};
use latent_core::hf::safetensors::Checkpoint;
use latent_core::model::{to_dtype, Norm, Rope};
use latent_core::train::state_dict::load_module_tensors;

use super::config::DecoderConfig;
use super::layer::DecoderLayer;
use super::time::TimeEmbedding;

/// The checkpoint key of the absolute position table.
pub(crate) const POSITIONS_KEY: &str = "positions.weight";

/// Logit given to the absorbing token in f32 and bf16: the head never predicts `<mask>`.
pub const MASK_LOGIT: f32 = -1e9;

/// The absorbing token's logit in `dtype`: [`MASK_LOGIT`], or a quarter of the most negative
/// finite value where that is closer to zero (f16: −16376; −1e9 would become −inf there, and
/// classifier-free guidance would then compute (−inf) − (−inf) = NaN). Finite, so guidance's
/// `cond − uncond` is exactly 0 at `<mask>`; a quarter of the range leaves room for the softmax's
/// shift by the row maximum without overflowing.
pub fn mask_logit(dtype: DType) -> f64 {
    let lowest = match dtype {
        DType::F16 => f64::from(burn::tensor::f16::MIN),
        _ => f64::from(f32::MIN),
    };
    f64::from(MASK_LOGIT).max(lowest / 4.0)
}

/// The trainable part of SGDD.
#[derive(Module, Debug)]
pub struct SgddModel<B: Backend> {
    /// Token embedding `[vocab, hidden]`, also the output head (tied).
    pub embed: Embedding<B>,
    /// Learned absolute position embedding `[max_len, hidden]` (see
    /// [`DecoderConfig::absolute_positions`]).
    pub positions: Option<Embedding<B>>,
    /// Timestep embedding.
    pub time: TimeEmbedding<B>,
    /// LayerNorm on the semantic vector (or the null vector) before [`SgddModel::project`]
    /// ([`DecoderConfig::cond_norm`]).
    pub cond_norm: Option<Norm<B>>,
    /// Semantic vector → memory slots: `[cond_dim, cond_tokens * hidden]`.
    pub project: Linear<B>,
    /// The learned null vector that replaces the semantic vector for unconditional predictions, `[cond_dim]`.
    pub null: Param<Tensor<B, 1>>,
    /// Decoder layers.
    pub layers: Vec<DecoderLayer<B>>,
    /// Final LayerNorm.
    pub norm: Norm<B>,
    hidden: usize,
    heads: usize,
    cond_tokens: usize,
    mask_id: usize,
    rope_theta: f64,
}

impl<B: Backend> SgddModel<B> {
    /// A randomly initialised model for `vocab` tokens (from the tokenizer), semantic vectors of
    /// `cond_dim` and absorbing token `mask_id`.
    pub fn new(
        config: &DecoderConfig,
        vocab: usize,
        cond_dim: usize,
        mask_id: u32,
        device: &B::Device,
    ) -> Self {
        let (h, std) = (config.hidden, config.init_std);
        Self {
            embed: Embedding {
                weight: Initializer::Normal { mean: 0.0, std }.init([vocab, h], device),
            },
            positions: config.absolute_positions.then(|| Embedding {
                weight: Initializer::Normal { mean: 0.0, std }.init([config.max_len, h], device),
            }),
            time: TimeEmbedding::new(h, std, device),
            cond_norm: config
                .cond_norm
                .then(|| Norm::new(NormKind::Layer, cond_dim, config.norm_eps, device)),
            project: super::linear(cond_dim, config.cond_tokens * h, std, device),
            null: Initializer::Normal { mean: 0.0, std }.init([cond_dim], device),
            layers: (0..config.layers)
                .map(|_| DecoderLayer::new(config, device))
                .collect(),
            norm: Norm::new(NormKind::Layer, h, config.norm_eps, device),
            hidden: h,
            heads: config.heads,
            cond_tokens: config.cond_tokens,
            mask_id: mask_id as usize,
            rope_theta: config.rope_theta,
        }
    }

    /// Replaces the token embedding by `weights` `[vocab, hidden]` (row-major host values).
    pub fn with_embedding(mut self, weights: Vec<f32>) -> Self {
        let [v, h] = self.embed.weight.shape().dims();
        let device = self.embed.weight.device();
        let t = Tensor::<B, 2>::from_data(TensorData::new(weights, [v, h]), &device);
        self.embed.weight = Param::from_tensor(t);
        self
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.embed.weight.shape().dims::<2>()[0]
    }

    /// Width of the semantic vectors the model takes.
    pub fn cond_dim(&self) -> usize {
        self.null.shape().dims::<1>()[0]
    }

    /// Loads weights saved by a run with another `max_len` (the phase 1 → phase 2 warm start):
    /// every tensor must match except the absolute position table, whose common rows are copied;
    /// rows beyond the saved table keep this model's fresh initialisation, and saved rows beyond
    /// `max_len` are dropped. Parameter ids are kept (an optimizer built on `self` stays valid).
    pub fn load_resizing_positions(mut self, checkpoint: &Checkpoint) -> latent_core::Result<Self> {
        let saved_rows = match checkpoint.read(POSITIONS_KEY)? {
            Some(table) if table.shape.len() == 2 => table.shape[0],
            _ => return load_module_tensors(self, checkpoint),
        };
        let Some(fresh) = self.positions.take() else {
            return load_module_tensors(self, checkpoint);
        };
        let [rows, hidden] = fresh.weight.dims();
        let device = fresh.weight.device();
        self.positions = Some(Embedding {
            weight: Initializer::Zeros.init([saved_rows, hidden], &device),
        });
        let mut loaded = load_module_tensors(self, checkpoint)?;
        let saved = loaded.positions.take().expect("set above").weight.val();
        let common = rows.min(saved_rows);
        let weight = fresh.weight.map(|init| {
            let require_grad = init.is_require_grad();
            let kept = saved.slice([0..common, 0..hidden]);
            let merged = if common < rows {
                Tensor::cat(vec![kept, init.slice([common..rows, 0..hidden])], 0)
            } else {
                kept
            };
            merged.detach().set_require_grad(require_grad)
        });
        loaded.positions = Some(Embedding { weight });
        Ok(loaded)
    }

    /// The absorbing token.
    pub fn mask_id(&self) -> u32 {
        self.mask_id as u32
    }

    /// Logits of the clean tokens.
    ///
    /// Shapes: `tokens` `[batch, seq]` (with `<mask>` where corrupted), `t` `[batch]` in `[0, 1]`,
    /// `cond` `[batch, cond_dim]` semantic vectors, `uncond` `[batch]` (1 = use the null vector
    /// instead of `cond`, 0 = conditional) → `[batch, seq, vocab]`, `<mask>` at [`MASK_LOGIT`].
    pub fn forward(
        &self,
        tokens: Tensor<B, 2, Int>,
        t: Tensor<B, 1>,
        cond: Tensor<B, 2>,
        uncond: Tensor<B, 1>,
    ) -> Tensor<B, 3> {
        let [b, s] = tokens.dims();
        let h = self
            .hidden(tokens, t, cond, uncond)
            .reshape([b * s, self.hidden]);
        let v = self.vocab_size();
        self.head(h).reshape([b, s, v])
    }

    /// Final hidden states (after the last norm); arguments as [`SgddModel::forward`] →
    /// `[batch, seq, hidden]`.
    pub fn hidden(
        &self,
        tokens: Tensor<B, 2, Int>,
        t: Tensor<B, 1>,
        cond: Tensor<B, 2>,
        uncond: Tensor<B, 1>,
    ) -> Tensor<B, 3> {
        let [b, s] = tokens.dims();
        let device = tokens.device();
        // Inputs in the parameters' dtype (bf16 in a mixed-precision run's working copy).
        let dtype = self.null.val().dtype();
        let (cond, uncond) = (to_dtype(cond, dtype), to_dtype(uncond, dtype));
        let c = self.cond_dim();
        let h = self.hidden;
        let u = uncond.reshape([b, 1]).expand([b, c]);
        let null = self.null.val().reshape([1, c]).expand([b, c]);
        let mut z = cond * (u.clone().neg() + 1.0) + null * u;
        if let Some(norm) = &self.cond_norm {
            z = norm.forward(z);
        }
        let memory = self.project.forward(z).reshape([b, self.cond_tokens, h]);
        let time = self.time.forward(t).reshape([b, 1, h]).expand([b, s, h]);
        let mut x = self.embed.forward(tokens) + time;
        if let Some(table) = &self.positions {
            let rows = table.weight.val().slice([0..s, 0..h]).unsqueeze::<3>();
            x = x + rows.repeat_dim(0, b);
        }
        let positions = Tensor::<B, 1, Int>::arange(0..s as i64, &device)
            .reshape([1, s])
            .expand([b, s]);
        let rope = Rope::new(
            &RopeConfig {
                theta: self.rope_theta,
                scaling: RopeScaling::None,
            },
            h / self.heads,
        )
        .tables(positions, self.heads, x.dtype());
        for layer in &self.layers {
            x = layer.forward(x, memory.clone(), &rope);
        }
        self.norm.forward(x)
    }

    /// The tied head on selected hidden states: `[n, hidden]` → `[n, vocab]`, `<mask>` at
    /// [`mask_logit`] of the logits' dtype. Training and decoding apply it to the masked positions only (the vocabulary
    /// projection and its softmax dominate the cost of a small decoder).
    pub fn head(&self, hidden: Tensor<B, 2>) -> Tensor<B, 2> {
        let [n, _] = hidden.dims();
        let device = hidden.device();
        let logits = hidden.matmul(self.embed.weight.val().transpose());
        let m = self.mask_id;
        let dtype = logits.dtype();
        logits.slice_assign(
            [0..n, m..m + 1],
            Tensor::full([n, 1], mask_logit(dtype), (&device, dtype)),
        )
    }

    /// Final hidden states at `positions` (flat indices into `batch * seq`); arguments as
    /// [`SgddModel::forward`] → `[positions.len(), hidden]`. [`SgddModel::head`] of these gives the
    /// logits there, without the head's cost at the other positions.
    pub fn hidden_at(
        &self,
        tokens: Tensor<B, 2, Int>,
        t: Tensor<B, 1>,
        cond: Tensor<B, 2>,
        uncond: Tensor<B, 1>,
        positions: &[usize],
    ) -> Tensor<B, 2> {
        let [b, s] = tokens.dims();
        let device = tokens.device();
        let h = self
            .hidden(tokens, t, cond, uncond)
            .reshape([b * s, self.hidden]);
        let idx: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
        let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [positions.len()]), &device);
        h.select(0, idx)
    }
}
