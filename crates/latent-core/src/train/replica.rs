//! What a method's [`super::TrainStep`] sees of its data-parallel replica
//! ([`super::TrainStep::join_replicas`]): its rank, the number of replicas, and exchanges of host
//! numbers with the others through burn-collective's all-reduce, for work a method shares out
//! itself (GRPO's rollouts: each replica rolls out its share of a window's groups, then every
//! replica gathers all of them).
//!
//! Every replica must make the same exchanges in the same order, as with the gradient all-reduce.
//! A failed exchange (another replica failed and released the collective) counts as the replica
//! following that failure, so the run reports the other replica's error as its cause.

use burn::prelude::*;
use burn_collective::ReduceOperation;

use super::collective::Peer;
use crate::Result;

/// One replica of a data-parallel run, as its training step sees it.
#[derive(Debug, Clone)]
pub struct Replica<B: Backend> {
    peer: Peer<B>,
}

impl<B: Backend> Replica<B> {
    pub(crate) fn new(peer: Peer<B>) -> Self {
        Self { peer }
    }

    /// This replica's rank, `0..replicas()` (0 logs and saves).
    pub fn rank(&self) -> usize {
        self.peer.rank
    }

    /// Replicas in the run.
    pub fn replicas(&self) -> usize {
        self.peer.peers
    }

    /// This replica's device.
    pub fn device(&self) -> &B::Device {
        &self.peer.device
    }

    /// The element-wise sum of every replica's `values` (all of the same length), in f32.
    pub fn sum(&self, values: Vec<f32>) -> Result<Vec<f32>> {
        if values.is_empty() {
            return Ok(values);
        }
        self.peer
            .all_reduce_f32(values, ReduceOperation::Sum, "a sum across replicas")
    }

    /// Every replica's `part`, in rank order (parts may differ in length). Values are exact: each
    /// replica places its part at its offset in a zero-filled buffer and the buffers are summed
    /// (`x + 0 = x`), so integers below 2²⁴ (token ids, lengths, bytes) pass through unchanged.
    pub fn all_gather(&self, part: &[f32]) -> Result<Vec<Vec<f32>>> {
        let n = self.replicas();
        // Lengths go as two f32 digits base 2²⁰, exact for parts up to 2⁴⁴ values.
        const DIGIT: usize = 1 << 20;
        let mut digits = vec![0.0; 2 * n];
        digits[2 * self.rank()] = (part.len() / DIGIT) as f32;
        digits[2 * self.rank() + 1] = (part.len() % DIGIT) as f32;
        let lengths: Vec<usize> = self
            .sum(digits)?
            .chunks(2)
            .map(|d| d[0] as usize * DIGIT + d[1] as usize)
            .collect();
        let total: usize = lengths.iter().sum();
        let offset: usize = lengths[..self.rank()].iter().sum();
        let mut buffer = vec![0.0; total];
        buffer[offset..offset + part.len()].copy_from_slice(part);
        let all = self.sum(buffer)?;
        let mut parts = Vec::with_capacity(n);
        let mut start = 0;
        for len in lengths {
            parts.push(all[start..start + len].to_vec());
            start += len;
        }
        Ok(parts)
    }
}
