//! Growing the vocabulary (e.g. for method-specific special tokens such as CODI's `<bot>`/`<eot>`).

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::{DType, Distribution};
use serde::{Deserialize, Serialize};

use super::causal_lm::CausalLm;
use crate::{CoreError, Result};

/// How [`CausalLm::resize_vocab_with`] initialises the rows it adds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NewRowInit {
    /// Each new value drawn from N(0, `initializer_range`²): transformers'
    /// `resize_token_embeddings(..., mean_resizing=False)` (and its behaviour before 4.46).
    #[default]
    Random,
    /// Every new embedding row is the mean of the existing rows (computed in f32); for an untied
    /// head, every new output row is the mean of the head's existing rows.
    ///
    /// transformers' default `mean_resizing=True` (`_init_added_embeddings_weights_with_mean`,
    /// 4.46 to 5.x) draws each new row from N(μ, 10⁻⁹·Σ), μ and Σ the mean and (biased) covariance of
    /// the old rows, and uses μ itself when 10⁻⁹·Σ is not positive definite. The noise it adds has
    /// a standard deviation of about 3·10⁻⁵ of the embeddings' own; this is its noise-free limit.
    Mean,
}

impl<B: Backend> CausalLm<B> {
    /// The model with `vocab_size` embedding rows (and head columns when the head is untied): the
    /// existing rows are kept, new rows are drawn from N(0, `initializer_range`²) as transformers'
    /// `resize_token_embeddings` did before mean-resizing. `config().vocab_size` (and the raw
    /// `config.json` value that [`CausalLm::save_pretrained`] writes) follow. Parameter ids and
    /// `require_grad` flags are kept. Shrinking is refused.
    pub fn resize_vocab(self, vocab_size: usize) -> Result<Self> {
        self.resize_vocab_with(vocab_size, NewRowInit::Random)
    }

    /// [`CausalLm::resize_vocab`] with the new rows initialised as `init` says.
    pub fn resize_vocab_with(mut self, vocab_size: usize, init: NewRowInit) -> Result<Self> {
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
        // `axis` is the vocabulary axis: 0 for the embedding `[vocab, hidden]`, 1 for the head
        // `[hidden, vocab]`.
        let grow = |param: Param<Tensor<B, 2>>, axis: usize| {
            let id = param.id;
            let weight = param.val();
            let require_grad = weight.is_require_grad();
            let mut shape = weight.dims();
            shape[axis] = extra;
            let fresh = match init {
                NewRowInit::Random => {
                    Tensor::<B, 2>::random(shape, Distribution::Normal(0.0, std), &weight.device())
                }
                NewRowInit::Mean => weight
                    .clone()
                    .cast(DType::F32)
                    .mean_dim(axis)
                    .repeat_dim(axis, extra),
            }
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
