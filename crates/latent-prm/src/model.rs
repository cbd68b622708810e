//! The latent reward model: a decoder backbone of the workspace fed with `inputs_embeds` =
//! [question embeddings, latents], the final hidden states pooled over the attention mask, dropout
//! and a linear head to one scalar (or, per step, one scalar at each latent position). The LM
//! head is never computed ([`CausalLm::forward_hidden`]).

use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::prelude::*;
use latent_core::model::{init_linear, FlatForward};
use latent_core::{CausalLm, LmInput};
use serde::{Deserialize, Serialize};

use crate::Result;

/// How the hidden states of a sequence become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Mean over the real (unmasked) positions (design 003's default).
    #[default]
    Mean,
    /// The last real position.
    Last,
    /// Element-wise maximum over the real positions.
    Max,
}

/// What the head scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadKind {
    /// One scalar per path from the pooled sequence (design 003).
    #[default]
    Pooled,
    /// One scalar at each latent position (LatentRM); a path's score is their sum.
    PerStep,
}

/// Pools `hidden` `[batch, seq, h]` over `mask` `[batch, seq]` (1 = real, 0 = padding, anywhere)
/// into `[batch, h]`. Every row needs at least one real position.
pub fn pool<B: Backend>(
    hidden: Tensor<B, 3>,
    mask: Tensor<B, 2, Int>,
    pooling: Pooling,
) -> Tensor<B, 2> {
    let [b, s, h] = hidden.dims();
    let maskf = mask.clone().float().unsqueeze_dim::<3>(2); // [b, s, 1]
    match pooling {
        Pooling::Mean => {
            let sum = (hidden * maskf.clone()).sum_dim(1); // [b, 1, h]
            let count = maskf.sum_dim(1); // [b, 1, 1]
            (sum / count).reshape([b, h])
        }
        Pooling::Last => {
            let device = hidden.device();
            let positions = Tensor::<B, 1, Int>::arange(0..s as i64, &device)
                .unsqueeze::<2>()
                .expand([b, s]);
            let last = (positions * mask).argmax(1); // [b, 1]
            let index = last.unsqueeze_dim::<3>(2).expand([b, 1, h]);
            hidden.gather(1, index).reshape([b, h])
        }
        Pooling::Max => {
            let padding = mask.equal_elem(0).unsqueeze_dim::<3>(2).expand([b, s, h]);
            hidden
                .mask_fill(padding, f32::NEG_INFINITY)
                .max_dim(1)
                .reshape([b, h])
        }
    }
}

/// The scorer.
#[derive(Module, Debug)]
pub struct LatentRewardModel<B: Backend> {
    /// The decoder backbone (its LM head is never used).
    pub backbone: CausalLm<B>,
    /// Maps the reasoner's thoughts `[.., d_latent]` to the backbone's width, when they differ.
    pub input_projection: Option<Linear<B>>,
    /// Dropout before the head.
    pub dropout: Dropout,
    /// `[hidden] → [1]`.
    pub head: Linear<B>,
    /// Pooling of the pooled head.
    #[module(skip)]
    pub pooling: Pooling,
    /// Pooled or per-step head.
    #[module(skip)]
    pub head_kind: HeadKind,
}

/// A micro-batch of paths.
#[derive(Debug, Clone)]
pub struct PrmInput<B: Backend> {
    /// Question ids `[batch, q]`, left-padded.
    pub question_ids: Tensor<B, 2, Int>,
    /// `[batch, q]`: 1 for real question tokens.
    pub question_mask: Tensor<B, 2, Int>,
    /// Thoughts `[batch, steps, d_latent]`.
    pub latents: Tensor<B, 3>,
}

impl<B: Backend> LatentRewardModel<B> {
    /// A scorer over `backbone` for thoughts of width `latent_dim` (an input projection, N(0, 0.02),
    /// when it differs from the backbone's width); head N(0, 0.02) with zero bias.
    pub fn new(
        backbone: CausalLm<B>,
        latent_dim: usize,
        pooling: Pooling,
        head_kind: HeadKind,
        dropout: f64,
    ) -> Self {
        let device = backbone.device();
        let hidden = backbone.config().hidden_size;
        let input_projection =
            (latent_dim != hidden).then(|| init_linear(latent_dim, hidden, true, 0.02, &device));
        Self {
            input_projection,
            dropout: DropoutConfig::new(dropout).init(),
            head: init_linear(hidden, 1, true, 0.02, &device),
            pooling,
            head_kind,
            backbone,
        }
    }

    /// Raw head outputs: `[batch, 1]` for the pooled head, `[batch, steps]` per step.
    pub fn forward(&self, input: PrmInput<B>) -> Result<Tensor<B, 2>> {
        let PrmInput {
            question_ids,
            question_mask,
            latents,
        } = input;
        let [b, steps, _] = latents.dims();
        let questions = self.backbone.embed(question_ids);
        let latents = match &self.input_projection {
            Some(p) => p.forward_flat(latents.cast(p.weight.val().dtype())),
            None => latents,
        }
        .cast(questions.dtype());
        let embeds = Tensor::cat(vec![questions, latents], 1);
        let device = embeds.device();
        let mask = Tensor::cat(
            vec![
                question_mask,
                Tensor::<B, 2, Int>::ones([b, steps], &device),
            ],
            1,
        );
        let hidden = self
            .backbone
            .forward_hidden(LmInput::embeds(embeds).attention_mask(mask.clone()))?
            .last_hidden
            .cast(burn::tensor::DType::F32);
        let [_, s, h] = hidden.dims();
        Ok(match self.head_kind {
            HeadKind::Pooled => {
                let pooled = pool(hidden, mask, self.pooling);
                self.head.forward_flat(self.dropout.forward(pooled))
            }
            HeadKind::PerStep => {
                let at_latents = hidden.slice([0..b, s - steps..s, 0..h]);
                self.head
                    .forward_flat(self.dropout.forward(at_latents))
                    .reshape([b, steps])
            }
        })
    }

    /// One score per path `[batch]`: the pooled head's value, or the sum of the per-step values.
    pub fn score(&self, input: PrmInput<B>) -> Result<Tensor<B, 1>> {
        let values = self.forward(input)?;
        let [b, _] = values.dims();
        Ok(values.sum_dim(1).reshape([b]))
    }
}

/// Trainable parameters besides the backbone's, `(head, input projection)`, for a backbone of
/// width `hidden` and thoughts of width `latent_dim`.
pub fn extra_parameters(hidden: usize, latent_dim: usize) -> (usize, usize) {
    let projection = if latent_dim != hidden {
        latent_dim * hidden + hidden
    } else {
        0
    };
    (hidden + 1, projection)
}
