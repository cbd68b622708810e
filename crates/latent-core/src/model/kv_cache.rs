//! A preallocated key/value cache: prefill, then steps of any number of positions, batched with
//! left padding; fork, select, truncate and reset.
//!
//! Keys and values live in tensors `[batch, kv_heads, capacity, head_dim]` written in place with
//! `slice_assign` (on Flex a uniquely owned tensor is mutated without a copy), and attention reads the
//! whole capacity with a mask that hides empty and padding slots, so a step never copies the cache.
//! When a step would overflow, capacity doubles (one copy, amortised).

use burn::prelude::*;

use crate::ModelConfig;

/// Keys and values of one layer.
#[derive(Debug, Clone)]
pub struct LayerKv<B: Backend> {
    /// `[batch, kv_heads, capacity, head_dim]`.
    pub k: Tensor<B, 4>,
    /// `[batch, kv_heads, capacity, head_dim]`.
    pub v: Tensor<B, 4>,
}

/// The cache of every layer plus which slots hold real tokens.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    pub(crate) layers: Vec<LayerKv<B>>,
    /// `[batch, capacity]`, 1 where a slot holds a real (non-padding) entry. Int rather than Bool:
    /// Flex's `select` on Bool tensors yields U8, which `cat` then rejects.
    valid: Tensor<B, 2, Int>,
    len: usize,
    capacity: usize,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for `batch` sequences of `capacity` slots, in `dtype`.
    pub fn new(
        config: &ModelConfig,
        batch: usize,
        capacity: usize,
        dtype: burn::tensor::DType,
        device: &B::Device,
    ) -> Self {
        let capacity = capacity.max(1);
        let shape = [batch, config.num_key_value_heads, capacity, config.head_dim];
        let zeros = || Tensor::<B, 4>::zeros(shape, (device, dtype));
        Self {
            layers: (0..config.num_hidden_layers)
                .map(|_| LayerKv {
                    k: zeros(),
                    v: zeros(),
                })
                .collect(),
            valid: Tensor::<B, 2, Int>::zeros([batch, capacity], device),
            len: 0,
            capacity,
        }
    }

    /// Filled slots (the same for every sequence; padding slots are filled but invalid).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no slot is filled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slots available before the next growth.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Sequences in the batch.
    pub fn batch(&self) -> usize {
        self.valid.dims()[0]
    }

    /// Makes room for `extra` more slots, doubling the capacity as often as needed.
    pub(crate) fn reserve(&mut self, extra: usize) {
        let needed = self.len + extra;
        if needed <= self.capacity {
            return;
        }
        let mut capacity = self.capacity;
        while capacity < needed {
            capacity *= 2;
        }
        let grow = |t: Tensor<B, 4>| {
            let [b, h, c, d] = t.dims();
            let more = Tensor::<B, 4>::zeros([b, h, capacity - c, d], (&t.device(), t.dtype()));
            Tensor::cat(vec![t, more], 2)
        };
        for layer in &mut self.layers {
            layer.k = grow(layer.k.clone());
            layer.v = grow(layer.v.clone());
        }
        let [b, c] = self.valid.dims();
        let more = Tensor::<B, 2, Int>::zeros([b, capacity - c], &self.valid.device());
        self.valid = Tensor::cat(vec![self.valid.clone(), more], 1);
        self.capacity = capacity;
    }

    /// Marks the next `valid.dims()[1]` slots filled; `valid` `[batch, new]` is 1 where they hold
    /// real tokens, 0 for padding. Returns the first new slot. Call [`KvCache::reserve`] first.
    pub(crate) fn append_slots(&mut self, valid: Tensor<B, 2, Int>) -> usize {
        let [b, n] = valid.dims();
        let start = self.len;
        self.valid = self
            .valid
            .clone()
            .slice_assign([0..b, start..start + n], valid);
        self.len += n;
        start
    }

    /// The attention mask for `n` queries placed at slots `start..start + n`, in the grouped-query
    /// layout cached attention uses (query heads of one key/value head stacked along the query
    /// axis): `[batch, kv_heads, groups · n, capacity]`, true = hidden (empty, padding, or a later
    /// slot). Built once per forward and shared by every layer.
    pub(crate) fn query_mask(
        &self,
        start: usize,
        n: usize,
        heads: usize,
        kv_heads: usize,
    ) -> Tensor<B, 4, Bool> {
        let device = self.valid.device();
        let (b, cap) = (self.batch(), self.capacity);
        let slots = Tensor::<B, 1, Int>::arange(0..cap as i64, &device).reshape([1, 1, cap]);
        let queries = Tensor::<B, 1, Int>::arange(start as i64..(start + n) as i64, &device)
            .reshape([1, n, 1]);
        let future = slots.greater(queries); // [1, n, cap]
        let invalid = self.valid.clone().equal_elem(0).reshape([b, 1, cap]);
        let groups = heads / kv_heads;
        future
            .expand([b, n, cap])
            .bool_or(invalid.expand([b, n, cap]))
            .unsqueeze_dim::<4>(1)
            .repeat_dim(1, groups)
            .reshape([b, 1, groups * n, cap])
            .expand([b, kv_heads, groups * n, cap])
    }

    /// Real (non-padding) tokens held per sequence, `[batch, 1]`: the next position of each sequence.
    pub fn real_tokens(&self) -> Tensor<B, 2, Int> {
        self.valid.clone().sum_dim(1)
    }

    /// Hides the filled slots where `keep` `[batch, len]` is 0 (it is multiplied into the validity of
    /// the first `len` slots), e.g. to keep only the question part of teacher sequences as the
    /// prompt of a student pass, sharing their keys and values.
    pub fn hide_filled(&mut self, keep: Tensor<B, 2, Int>) {
        let [b, n] = keep.dims();
        let current = self.valid.clone().slice([0..b, 0..n]);
        self.valid = self
            .valid
            .clone()
            .slice_assign([0..b, 0..n], current * keep.clamp(0, 1));
    }

    /// Marks every filled slot valid, padding included, so later positions attend to it and their
    /// default positions count it. This reproduces reference code that drops the attention mask
    /// after the prompt (CODI's official implementation); correct code never needs it.
    pub fn unmask_filled(&mut self) {
        let b = self.batch();
        let filled = Tensor::<B, 2, Int>::ones([b, self.len], &self.valid.device());
        self.valid = self.valid.clone().slice_assign([0..b, 0..self.len], filled);
    }

    /// Forgets everything (capacity is kept).
    pub fn reset(&mut self) {
        self.truncate(0);
    }

    /// Keeps the first `len` slots only (e.g. to re-run from an earlier point).
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let [b, c] = self.valid.dims();
        let cleared = Tensor::<B, 2, Int>::zeros([b, c - len], &self.valid.device());
        self.valid = self.valid.clone().slice_assign([0..b, len..c], cleared);
        self.len = len;
    }

    /// A cache holding the sequences `indices` (in that order), e.g. `[0, 0, 0, 0]` to branch four
    /// paths from one prefix, or the unfinished subset of a batch.
    pub fn select(&self, indices: &[usize]) -> Self {
        let idx = index_tensor::<B>(indices, &self.valid.device());
        Self {
            layers: self
                .layers
                .iter()
                .map(|l| LayerKv {
                    k: l.k.clone().select(0, idx.clone()),
                    v: l.v.clone().select(0, idx.clone()),
                })
                .collect(),
            valid: self.valid.clone().select(0, idx),
            len: self.len,
            capacity: self.capacity,
        }
    }

    /// `n` independent copies of every sequence (sequence i becomes rows i*n .. i*n + n).
    pub fn fork(&self, n: usize) -> Self {
        let indices: Vec<usize> = (0..self.batch())
            .flat_map(|i| std::iter::repeat_n(i, n))
            .collect();
        self.select(&indices)
    }
}

/// `indices` as an Int tensor `[n]` (for `select`).
pub(crate) fn index_tensor<B: Backend>(indices: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    let data: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(data, [indices.len()]), device)
}
