//! The stepper: the caller drives decoding one position at a time and chooses, per sequence,
//! whether the next input is a token id or a vector (a continuous thought).
//!
//! Every latent procedure of the workspace is a policy on top of this loop:
//!
//! ```no_run
//! # use burn::prelude::*;
//! # use latent_core::infer::{StepInput, Stepper};
//! # fn demo<B: Backend>(model: &latent_core::CausalLm<B>) -> latent_core::Result<()> {
//! let mut stepper = Stepper::new(model, 2, 64);
//! let mut out = stepper.prefill_ids(&[vec![1, 2, 3], vec![4, 5]], 0)?;
//! for _ in 0..6 {
//!     // CODI-style: sequence 0 thinks in vectors (its last hidden state), sequence 1 writes tokens.
//!     let thought = out.hidden.clone().narrow(0, 0, 1).squeeze_dim::<1>(0);
//!     let token = out.greedy_tokens()[1];
//!     out = stepper.step(&[StepInput::Vector(thought), StepInput::Token(token)])?;
//! }
//! # Ok(()) }
//! ```

use burn::prelude::*;

use super::kv_cache::KvCache;
use super::sampling::argmax;
use crate::{CausalLm, CoreError, LmInput, Result};

/// One sequence's next input.
#[derive(Debug, Clone)]
pub enum StepInput<B: Backend> {
    /// A token id.
    Token(u32),
    /// A vector `[hidden]` fed in place of a token embedding.
    Vector(Tensor<B, 1>),
}

/// What one step returns, for the last position of every sequence.
#[derive(Debug, Clone)]
pub struct StepOutput<B: Backend> {
    /// `[batch, vocab]`.
    pub logits: Tensor<B, 2>,
    /// Final hidden state (after the final norm), `[batch, hidden]`.
    pub hidden: Tensor<B, 2>,
}

impl<B: Backend> StepOutput<B> {
    fn last_position(out: crate::LmOutput<B>) -> Self {
        let [b, s, v] = out.logits.dims();
        let h = out.last_hidden.dims()[2];
        Self {
            logits: out.logits.slice([0..b, s - 1..s, 0..v]).reshape([b, v]),
            hidden: out
                .last_hidden
                .slice([0..b, s - 1..s, 0..h])
                .reshape([b, h]),
        }
    }

    /// Logits on the host, one `Vec` per sequence.
    pub fn logits_rows(&self) -> Vec<Vec<f32>> {
        let [b, v] = self.logits.dims();
        let flat: Vec<f32> = self
            .logits
            .clone()
            .into_data()
            .convert::<f32>()
            .into_vec()
            .expect("f32 logits");
        (0..b).map(|i| flat[i * v..(i + 1) * v].to_vec()).collect()
    }

    /// The arg-max token of every sequence.
    pub fn greedy_tokens(&self) -> Vec<u32> {
        self.logits_rows()
            .iter()
            .map(|row| argmax(row) as u32)
            .collect()
    }
}

/// Drives a model through its KV cache, one position per sequence per step.
#[derive(Debug)]
pub struct Stepper<'m, B: Backend> {
    model: &'m CausalLm<B>,
    cache: KvCache<B>,
    finished: Vec<bool>,
}

impl<'m, B: Backend> Stepper<'m, B> {
    /// A stepper for `batch` sequences with room for `capacity` positions (it grows if needed).
    pub fn new(model: &'m CausalLm<B>, batch: usize, capacity: usize) -> Self {
        let dtype = model.embed_tokens.weight.val().dtype();
        Self {
            cache: KvCache::new(model.config(), batch, capacity, dtype, &model.device()),
            model,
            finished: vec![false; batch],
        }
    }

    /// Runs a prompt through the model. `input` is `[batch, seq]` (ids, vectors or mixed, with an
    /// attention mask for left padding); the output is for the last position of every row.
    pub fn prefill(&mut self, input: LmInput<B>) -> Result<StepOutput<B>> {
        Ok(StepOutput::last_position(
            self.model.forward_cached(input, &mut self.cache)?,
        ))
    }

    /// Left-pads token prompts with `pad_id` and runs them through the model.
    pub fn prefill_ids(&mut self, prompts: &[Vec<u32>], pad_id: u32) -> Result<StepOutput<B>> {
        if prompts.len() != self.finished.len() {
            return Err(CoreError::Shape(format!(
                "{} prompts for a stepper of {} sequences",
                prompts.len(),
                self.finished.len()
            )));
        }
        let input = LmInput::left_padded(prompts, pad_id, &self.model.device());
        self.prefill(input)
    }

    /// One position per sequence. Finished sequences take a masked padding slot (their input is ignored).
    pub fn step(&mut self, inputs: &[StepInput<B>]) -> Result<StepOutput<B>> {
        let b = self.finished.len();
        if inputs.len() != b {
            return Err(CoreError::Shape(format!(
                "{} step inputs for {b} sequences",
                inputs.len()
            )));
        }
        let device = self.model.device();
        let h = self.model.config().hidden_size;
        let ids: Vec<i64> = inputs
            .iter()
            .map(|i| match i {
                StepInput::Token(t) => *t as i64,
                StepInput::Vector(_) => 0,
            })
            .collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, 1]), &device);
        let mask: Vec<i64> = self.finished.iter().map(|&f| i64::from(!f)).collect();
        let mask = Tensor::<B, 2, Int>::from_data(TensorData::new(mask, [b, 1]), &device);
        let vectors: Vec<Option<&Tensor<B, 1>>> = inputs
            .iter()
            .map(|i| match i {
                StepInput::Vector(v) => Some(v),
                StepInput::Token(_) => None,
            })
            .collect();
        let input = if vectors.iter().all(Option::is_none) {
            LmInput::ids(ids)
        } else {
            let dtype = self.model.embed_tokens.weight.val().dtype();
            let rows: Vec<Tensor<B, 1>> = vectors
                .iter()
                .map(|v| match v {
                    Some(v) => (*v).clone(),
                    None => Tensor::zeros([h], (&device, dtype)),
                })
                .collect();
            let embeds = Tensor::stack::<2>(rows, 0).reshape([b, 1, h]);
            if vectors.iter().all(Option::is_some) {
                LmInput::embeds(embeds)
            } else {
                let replace: Vec<bool> = vectors.iter().map(Option::is_some).collect();
                let replace =
                    Tensor::<B, 2, Bool>::from_data(TensorData::new(replace, [b, 1]), &device);
                LmInput::mixed(ids, embeds, replace)
            }
        };
        self.prefill(input.attention_mask(mask))
    }

    /// One token per sequence.
    pub fn step_tokens(&mut self, tokens: &[u32]) -> Result<StepOutput<B>> {
        let inputs: Vec<StepInput<B>> = tokens.iter().map(|&t| StepInput::Token(t)).collect();
        self.step(&inputs)
    }

    /// One vector per sequence, `vectors` `[batch, hidden]`.
    pub fn step_vectors(&mut self, vectors: Tensor<B, 2>) -> Result<StepOutput<B>> {
        let [b, h] = vectors.dims();
        let mask: Vec<i64> = self.finished.iter().map(|&f| i64::from(!f)).collect();
        let mask = Tensor::<B, 2, Int>::from_data(TensorData::new(mask, [b, 1]), &vectors.device());
        self.prefill(LmInput::embeds(vectors.reshape([b, 1, h])).attention_mask(mask))
    }

    /// Marks sequence `i` finished: its later steps are padding.
    pub fn finish(&mut self, i: usize) {
        self.finished[i] = true;
    }

    /// Per-sequence finished flags.
    pub fn finished(&self) -> &[bool] {
        &self.finished
    }

    /// Whether every sequence is finished.
    pub fn all_finished(&self) -> bool {
        self.finished.iter().all(|&f| f)
    }

    /// The cache (e.g. to inspect its length).
    pub fn cache(&self) -> &KvCache<B> {
        &self.cache
    }

    /// The cache, mutably (e.g. [`KvCache::unmask_filled`] to reproduce reference code's masking).
    pub fn cache_mut(&mut self) -> &mut KvCache<B> {
        &mut self.cache
    }

    /// `n` independent continuations of every sequence (sequence i becomes rows i*n .. i*n + n),
    /// e.g. to sample N latent paths from one prompt.
    pub fn fork(&self, n: usize) -> Self {
        Self {
            model: self.model,
            cache: self.cache.fork(n),
            finished: self
                .finished
                .iter()
                .flat_map(|&f| std::iter::repeat_n(f, n))
                .collect(),
        }
    }
}
