//! The forward contract: what goes into [`crate::CausalLm::forward`] and what comes out.

use burn::prelude::*;

/// Inputs of one forward pass. Build with [`LmInput::ids`], [`LmInput::embeds`] or
/// [`LmInput::mixed`], then add options.
#[derive(Debug, Clone)]
pub struct LmInput<B: Backend> {
    pub(crate) ids: Option<Tensor<B, 2, Int>>,
    pub(crate) embeds: Option<Tensor<B, 3>>,
    pub(crate) replace: Option<Tensor<B, 2, Bool>>,
    pub(crate) attention_mask: Option<Tensor<B, 2, Int>>,
    pub(crate) position_ids: Option<Tensor<B, 2, Int>>,
    pub(crate) output_hidden_states: bool,
    pub(crate) logits_to_keep: Option<usize>,
}

impl<B: Backend> LmInput<B> {
    fn new(
        ids: Option<Tensor<B, 2, Int>>,
        embeds: Option<Tensor<B, 3>>,
        replace: Option<Tensor<B, 2, Bool>>,
    ) -> Self {
        Self {
            ids,
            embeds,
            replace,
            attention_mask: None,
            position_ids: None,
            output_hidden_states: false,
            logits_to_keep: None,
        }
    }

    /// Positions fed, `batch × seq`.
    pub(crate) fn rows(&self) -> usize {
        match (&self.ids, &self.embeds) {
            (_, Some(e)) => e.dims()[0] * e.dims()[1],
            (Some(ids), None) => ids.dims()[0] * ids.dims()[1],
            (None, None) => 0,
        }
    }

    /// Token ids `[batch, seq]`.
    pub fn ids(ids: Tensor<B, 2, Int>) -> Self {
        Self::new(Some(ids), None, None)
    }

    /// Token prompts left-padded with `pad_id` to the longest: ids and attention mask
    /// `[prompts.len(), width]`, width = the longest prompt (at least 1).
    pub fn left_padded(prompts: &[Vec<u32>], pad_id: u32, device: &B::Device) -> Self {
        let width = prompts.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(prompts.len() * width);
        let mut mask = Vec::with_capacity(prompts.len() * width);
        for p in prompts {
            let pad = width - p.len();
            ids.extend(
                std::iter::repeat_n(i64::from(pad_id), pad).chain(p.iter().map(|&t| i64::from(t))),
            );
            mask.extend(std::iter::repeat_n(0i64, pad).chain(std::iter::repeat_n(1, p.len())));
        }
        let shape = [prompts.len(), width];
        Self::ids(Tensor::from_data(TensorData::new(ids, shape), device))
            .attention_mask(Tensor::from_data(TensorData::new(mask, shape), device))
    }

    /// Input embeddings `[batch, seq, hidden]` in place of tokens (position embeddings are still added).
    pub fn embeds(embeds: Tensor<B, 3>) -> Self {
        Self::new(None, Some(embeds), None)
    }

    /// Token ids `[batch, seq]`, with `embeds` `[batch, seq, hidden]` replacing the token embedding
    /// wherever `replace` `[batch, seq]` is true (latent positions).
    pub fn mixed(
        ids: Tensor<B, 2, Int>,
        embeds: Tensor<B, 3>,
        replace: Tensor<B, 2, Bool>,
    ) -> Self {
        Self::new(Some(ids), Some(embeds), Some(replace))
    }

    /// Attention mask `[batch, seq]`: 1 for real tokens, 0 for padding (left or right).
    /// Without explicit position ids, positions count real tokens only.
    pub fn attention_mask(mut self, mask: Tensor<B, 2, Int>) -> Self {
        self.attention_mask = Some(mask);
        self
    }

    /// Explicit position ids `[batch, seq]`.
    pub fn position_ids(mut self, positions: Tensor<B, 2, Int>) -> Self {
        self.position_ids = Some(positions);
        self
    }

    /// Also return every layer's hidden state.
    pub fn output_hidden_states(mut self, yes: bool) -> Self {
        self.output_hidden_states = yes;
        self
    }

    /// Compute logits for the last `n` positions only (transformers' `logits_to_keep`): the output's
    /// `logits` is `[batch, n, vocab]` (`n` is clamped to `1..=seq`). The hidden states are whole.
    pub fn logits_to_keep(mut self, n: usize) -> Self {
        self.logits_to_keep = Some(n);
        self
    }
}

/// Outputs of one forward pass.
#[derive(Debug, Clone)]
pub struct LmOutput<B: Backend> {
    /// `[batch, seq, vocab]` (`[batch, n, vocab]` with [`LmInput::logits_to_keep`]).
    pub logits: Tensor<B, 3>,
    /// Final hidden state after the final norm, `[batch, seq, hidden]`.
    pub last_hidden: Tensor<B, 3>,
    /// When requested: `num_layers + 1` tensors `[batch, seq, hidden]`; index 0 is the embedding
    /// output, index i the output of block i-1, and the last one is after the final norm
    /// (transformers' `output_hidden_states`). Empty otherwise.
    pub hidden_states: Vec<Tensor<B, 3>>,
}

/// Outputs of a forward pass without the LM head ([`crate::CausalLm::forward_hidden`]).
#[derive(Debug, Clone)]
pub struct LmHidden<B: Backend> {
    /// Final hidden state after the final norm, `[batch, seq, hidden]`.
    pub last_hidden: Tensor<B, 3>,
    /// As [`LmOutput::hidden_states`].
    pub hidden_states: Vec<Tensor<B, 3>>,
}
