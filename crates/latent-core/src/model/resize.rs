//! Growing the vocabulary (e.g. for method-specific special tokens such as CODI's `<bot>`/`<eot>`).

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::Distribution;

use super::causal_lm::CausalLm;
use crate::{CoreError, Result};

impl<B: Backend> CausalLm<B> {
    /// The model with `vocab_size` embedding rows (and head columns when the head is untied): the
    /// existing rows are kept, new rows are drawn from N(0, `initializer_range`²) as transformers'
    /// `resize_token_embeddings` did before mean-resizing. `config().vocab_size` (and the raw
    /// `config.json` value that [`CausalLm::save_pretrained`] writes) follow. Parameter ids and
    /// `require_grad` flags are kept. Shrinking is refused.
    pub fn resize_vocab(mut self, vocab_size: usize) -> Result<Self> {
        let old = self.config.vocab_size;
        if vocab_size < old {
            return Err(CoreError::Shape(format!(
                "cannot shrink the vocabulary from {old} to {vocab_size} rows"
            )));
        }
        if vocab_size == old {
            return Ok(self);
        }
        let std = self.config.initializer_range;
        let extra = vocab_size - old;
        let grow = |param: Param<Tensor<B, 2>>, axis: usize| {
            let id = param.id;
            let weight = param.val();
            let require_grad = weight.is_require_grad();
            let mut shape = weight.dims();
            shape[axis] = extra;
            let fresh =
                Tensor::<B, 2>::random(shape, Distribution::Normal(0.0, std), &weight.device())
                    .cast(weight.dtype());
            let grown = Tensor::cat(vec![weight, fresh], axis).detach();
            Param::initialized(id, grown.set_require_grad(require_grad))
        };
        self.embed_tokens.weight = grow(self.embed_tokens.weight, 0);
        if let Some(head) = self.lm_head.as_mut() {
            head.weight = grow(head.weight.clone(), 1);
        }
        self.config.vocab_size = vocab_size;
        if let Some(obj) = self.config.raw.as_object_mut() {
            obj.insert("vocab_size".into(), vocab_size.into());
        }
        Ok(self)
    }
}
