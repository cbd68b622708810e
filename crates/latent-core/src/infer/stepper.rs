//! The stepper: the caller drives decoding one position at a time and chooses, per sequence,
//! whether the next input is a token id or a vector (a continuous thought). The decoding loop
//! ([`crate::infer::decode()`]) drives it for every procedure of the workspace; used by hand:
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

use super::sampling::argmax;
use crate::model::{few_rows_matmul, KvCache};
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
        let [b, n, v] = out.logits.dims();
        let [_, s, h] = out.last_hidden.dims();
        Self {
            logits: out.logits.slice([0..b, n - 1..n, 0..v]).reshape([b, v]),
            hidden: out
                .last_hidden
                .slice([0..b, s - 1..s, 0..h])
                .reshape([b, h]),
        }
    }

    /// Every row repeated `n` times (row i becomes rows i*n .. i*n + n), matching [`Stepper::fork`].
    pub fn fork(&self, n: usize) -> Self {
        let b = self.logits.dims()[0];
        let rows: Vec<usize> = (0..b).flat_map(|i| std::iter::repeat_n(i, n)).collect();
        let idx = crate::model::kv_cache::index_tensor::<B>(&rows, &self.logits.device());
        Self {
            logits: self.logits.clone().select(0, idx.clone()),
            hidden: self.hidden.clone().select(0, idx),
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
    /// attention mask for left padding); the output is for the last position of every row. On the
    /// CPU backend a step whose products are wide enough runs on a thread of rayon's pool, where
    /// they are cut across its threads ([`crate::model::few_rows_matmul`]).
    pub fn prefill(&mut self, input: LmInput<B>) -> Result<StepOutput<B>> {
        let input = input.logits_to_keep(1);
        let (model, cache) = (self.model, &mut self.cache);
        let config = model.config();
        let dtype = model.embed_tokens.weight.val().dtype();
        let wide = few_rows_matmul::cuts_products::<B>(
            input.rows(),
            config.hidden_size,
            config.intermediate_size,
            dtype,
        );
        let out = if wide {
            // `scope` runs the closure on a pool thread, from where the step's products hand their
            // parts to the other threads without the caller sleeping on a lock.
            rayon::scope(|_| model.forward_cached(input, cache))
        } else {
            model.forward_cached(input, cache)
        };
        Ok(StepOutput::last_position(out?))
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
        let ids: Vec<u32> = inputs
            .iter()
            .map(|i| match i {
                StepInput::Token(t) => *t,
                StepInput::Vector(_) => 0,
            })
            .collect();
        let use_vector: Vec<bool> = inputs
            .iter()
            .map(|i| matches!(i, StepInput::Vector(_)))
            .collect();
        let vectors = use_vector.contains(&true).then(|| {
            let h = self.model.config().hidden_size;
            let device = self.model.device();
            let dtype = self.model.embed_tokens.weight.val().dtype();
            let rows: Vec<Tensor<B, 1>> = inputs
                .iter()
                .map(|i| match i {
                    StepInput::Vector(v) => v.clone(),
                    StepInput::Token(_) => Tensor::zeros([h], (&device, dtype)),
                })
                .collect();
            Tensor::stack::<2>(rows, 0)
        });
        self.step_batch(&ids, vectors, &use_vector)
    }

    /// One position per sequence from batched inputs: sequence `i` takes `vectors` row `i`
    /// (`[batch, hidden]`) where `use_vector[i]`, else the token `ids[i]`. Finished sequences take a
    /// masked padding slot.
    pub fn step_batch(
        &mut self,
        ids: &[u32],
        vectors: Option<Tensor<B, 2>>,
        use_vector: &[bool],
    ) -> Result<StepOutput<B>> {
        let b = self.finished.len();
        if ids.len() != b || use_vector.len() != b {
            return Err(CoreError::Shape(format!(
                "{} ids and {} vector flags for {b} sequences",
                ids.len(),
                use_vector.len()
            )));
        }
        let device = self.model.device();
        let ids: Vec<i64> = ids.iter().map(|&t| i64::from(t)).collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, 1]), &device);
        let input = match vectors.filter(|_| use_vector.contains(&true)) {
            None => LmInput::ids(ids),
            Some(vectors) => {
                let [vb, h] = vectors.dims();
                if vb != b {
                    return Err(CoreError::Shape(format!(
                        "{vb} step vectors for {b} sequences"
                    )));
                }
                let embeds = vectors.reshape([b, 1, h]);
                if use_vector.iter().all(|&v| v) {
                    LmInput::embeds(embeds)
                } else {
                    let replace = Tensor::<B, 2, Bool>::from_data(
                        TensorData::new(use_vector.to_vec(), [b, 1]),
                        &device,
                    );
                    LmInput::mixed(ids, embeds, replace)
                }
            }
        };
        let input = match self.padding_mask() {
            Some(mask) => input.attention_mask(mask),
            None => input,
        };
        self.prefill(input)
    }

    /// `[batch, 1]`, 0 for finished sequences; `None` when none is finished.
    fn padding_mask(&self) -> Option<Tensor<B, 2, Int>> {
        if !self.finished.contains(&true) {
            return None;
        }
        let b = self.finished.len();
        let mask: Vec<i64> = self.finished.iter().map(|&f| i64::from(!f)).collect();
        Some(Tensor::from_data(
            TensorData::new(mask, [b, 1]),
            &self.model.device(),
        ))
    }

    /// One token per sequence.
    pub fn step_tokens(&mut self, tokens: &[u32]) -> Result<StepOutput<B>> {
        let inputs: Vec<StepInput<B>> = tokens.iter().map(|&t| StepInput::Token(t)).collect();
        self.step(&inputs)
    }

    /// One vector per sequence, `vectors` `[batch, hidden]`.
    pub fn step_vectors(&mut self, vectors: Tensor<B, 2>) -> Result<StepOutput<B>> {
        let b = self.finished.len();
        self.step_batch(&vec![0; b], Some(vectors), &vec![true; b])
    }

    /// Marks sequence `i` finished: its later steps are padding.
    pub fn finish(&mut self, i: usize) {
        self.finished[i] = true;
    }

    /// Per-sequence finished flags.
    pub fn finished(&self) -> &[bool] {
        &self.finished
    }

    /// Sequences in the batch.
    pub fn batch(&self) -> usize {
        self.finished.len()
    }

    /// Indices of the sequences not finished.
    pub fn live_rows(&self) -> Vec<usize> {
        (0..self.finished.len())
            .filter(|&i| !self.finished[i])
            .collect()
    }

    /// Keeps only the sequences `rows` (in that order), dropping the others and their cache rows:
    /// the batch shrinks, so later steps cost only what the kept rows need.
    pub fn retain(&mut self, rows: &[usize]) {
        self.cache = self.cache.select(rows);
        self.finished = rows.iter().map(|&r| self.finished[r]).collect();
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
