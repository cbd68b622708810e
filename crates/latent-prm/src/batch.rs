//! Micro-batches of collected paths: which paths (shuffled per epoch, whole questions for the
//! listwise loss) and their tensors (left-padded question ids, thoughts, labels).

use std::ops::Range;

use burn::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::model::PrmInput;
use crate::paths::PathSet;

/// One micro-batch: path indices into a [`PathSet`], in runs of whole questions when `groups`
/// lists the run lengths (else one group per path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicroBatch {
    /// Path indices.
    pub paths: Vec<usize>,
    /// Consecutive run lengths of paths of one question (sum = `paths.len()`).
    pub groups: Vec<usize>,
}

/// Data-parallel shards cut whole groups (one path each for the pointwise losses, whole
/// questions for the listwise one, whose loss is a mean over questions).
impl<B: Backend> latent_core::train::Shard<B> for MicroBatch {
    fn units(&self) -> usize {
        self.groups.len()
    }

    fn shard(&self, range: Range<usize>, _device: &B::Device) -> latent_core::Result<Self> {
        let groups = self.groups.get(range.clone()).ok_or_else(|| {
            latent_core::CoreError::Shape(format!(
                "shard of groups {range:?} of a micro-batch of {} groups",
                self.groups.len()
            ))
        })?;
        let start: usize = self.groups[..range.start].iter().sum();
        let len: usize = groups.iter().sum();
        Ok(Self {
            paths: self.paths[start..start + len].to_vec(),
            groups: groups.to_vec(),
        })
    }
}

/// The micro-batches of epoch `epoch` over the paths of `questions` (positions in the set):
/// `batch_size` shuffled paths each, or `batch_size` shuffled questions with all their paths when
/// `whole_questions`. The order depends only on `seed` and `epoch`.
pub fn epoch_batches(
    set: &PathSet,
    questions: &[usize],
    batch_size: usize,
    whole_questions: bool,
    seed: u64,
    epoch: usize,
) -> Vec<MicroBatch> {
    let mut rng = StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let groups = set.groups();
    if whole_questions {
        let mut order = questions.to_vec();
        order.shuffle(&mut rng);
        order
            .chunks(batch_size.max(1))
            .map(|qs| MicroBatch {
                paths: qs.iter().flat_map(|&q| groups[q].iter().copied()).collect(),
                groups: qs.iter().map(|&q| groups[q].len()).collect(),
            })
            .collect()
    } else {
        let mut paths: Vec<usize> = questions
            .iter()
            .flat_map(|&q| groups[q].iter().copied())
            .collect();
        paths.shuffle(&mut rng);
        paths
            .chunks(batch_size.max(1))
            .map(|p| MicroBatch {
                paths: p.to_vec(),
                groups: vec![1; p.len()],
            })
            .collect()
    }
}

/// How many micro-batches [`epoch_batches`] makes per epoch with the same arguments.
pub fn batches_per_epoch(
    set: &PathSet,
    questions: &[usize],
    batch_size: usize,
    whole_questions: bool,
) -> usize {
    let units = if whole_questions {
        questions.len()
    } else {
        questions.len() * set.meta.sampling.paths_per_question
    };
    units.div_ceil(batch_size.max(1))
}

/// The scorer's input for `paths`: question ids left-padded (pad id 0, masked) and cut from the
/// left to leave room for the thoughts within `max_seq_len`, and the thoughts `[n, steps, d]`.
pub fn input_of<B: Backend>(
    set: &PathSet,
    paths: &[usize],
    max_seq_len: usize,
    device: &B::Device,
) -> PrmInput<B> {
    let (steps, d) = (set.steps(), set.hidden());
    let room = max_seq_len.saturating_sub(steps).max(1);
    let questions: Vec<&[u32]> = paths
        .iter()
        .map(|&i| {
            let ids = &set.question_of(i).ids;
            &ids[ids.len().saturating_sub(room)..]
        })
        .collect();
    let width = questions.iter().map(|q| q.len()).max().unwrap_or(1).max(1);
    let n = paths.len();
    let mut ids = Vec::with_capacity(n * width);
    let mut mask = Vec::with_capacity(n * width);
    for q in &questions {
        let pad = width - q.len();
        ids.extend(std::iter::repeat_n(0i64, pad).chain(q.iter().map(|&t| i64::from(t))));
        mask.extend(std::iter::repeat_n(0i64, pad).chain(std::iter::repeat_n(1, q.len())));
    }
    let mut latents = Vec::with_capacity(n * steps * d);
    for &i in paths {
        latents.extend_from_slice(set.latent(i));
    }
    PrmInput {
        question_ids: Tensor::from_data(TensorData::new(ids, [n, width]), device),
        question_mask: Tensor::from_data(TensorData::new(mask, [n, width]), device),
        latents: Tensor::from_data(TensorData::new(latents, [n, steps, d]), device),
    }
}

/// Labels of `paths`, `[n, k]`: the path score (`k` = 1, or repeated over the `k` steps of a
/// per-step head), or the per-step Monte-Carlo values when `step_labels`.
pub fn labels_of<B: Backend>(
    set: &PathSet,
    paths: &[usize],
    k: usize,
    step_labels: bool,
    device: &B::Device,
) -> Tensor<B, 2> {
    let mut y = Vec::with_capacity(paths.len() * k);
    for &i in paths {
        match set.step_value(i).filter(|_| step_labels) {
            Some(values) => y.extend_from_slice(values),
            None => y.extend(std::iter::repeat_n(set.scores[i], k)),
        }
    }
    Tensor::from_data(TensorData::new(y, [paths.len(), k]), device)
}
