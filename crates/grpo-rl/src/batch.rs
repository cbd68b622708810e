//! What the shared training loop iterates over: micro-batches that each point at their generation
//! batch (one update's prompts). The GRPO step rolls out a generation batch once, at its first
//! micro-batch, and every micro-batch of it (and of its `num_iterations` repeats) trains on its
//! share, as TRL's generation buffer does.
//!
//! An epoch shuffles the prompts (seed + epoch), cuts them into generation batches of
//! `prompts_per_micro_batch × accumulation` prompts (an incomplete last one is dropped, as TRL's
//! `RepeatSampler` does) and lists each one's micro-batches `num_iterations` times.

use std::ops::Range;
use std::sync::Arc;

use burn::tensor::backend::Backend;
use latent_core::train::Shard;
use latent_datasets::rng::SplitMix64;

/// The prompts of one update (and the extra prompts dynamic sampling may draw from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// A number unique in the run (`epoch × windows per epoch + index`); seeds its rollouts.
    pub id: u64,
    /// Prompt indices.
    pub prompts: Vec<usize>,
    /// Further prompt indices for dynamic sampling (the next ones in the epoch's order).
    pub reserve: Vec<usize>,
}

/// One micro-batch: a share of a window's completions, in one of its iterations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicroBatch {
    /// The window.
    pub window: Arc<Window>,
    /// Which share (0-based, `< accumulation`).
    pub part: usize,
    /// Which pass over the window (0-based, `< num_iterations`).
    pub iteration: usize,
    /// Completions in the whole micro-batch (`prompts_per_micro_batch × group_size`).
    pub completions: usize,
    /// The completions this batch trains on, `0..completions` within the micro-batch, or a
    /// data-parallel replica's shard of them.
    pub shard: Range<usize>,
}

impl MicroBatch {
    /// The rows of the whole micro-batch in its generation batch.
    pub fn whole_rows(&self) -> Range<usize> {
        self.part * self.completions..(self.part + 1) * self.completions
    }

    /// The rows this batch trains on in its generation batch.
    pub fn rows(&self) -> Range<usize> {
        let start = self.part * self.completions;
        start + self.shard.start..start + self.shard.end
    }
}

/// A micro-batch is cut by completions (the advantages are computed for the whole window before
/// any micro-batch trains, so rows of one group may train on different replicas).
impl<B: Backend> Shard<B> for MicroBatch {
    fn units(&self) -> usize {
        self.shard.len()
    }

    fn shard(&self, range: Range<usize>, _device: &B::Device) -> latent_core::Result<Self> {
        if range.end > self.shard.len() || range.is_empty() {
            return Err(latent_core::CoreError::Shape(format!(
                "shard {range:?} of a micro-batch of {} completions",
                self.shard.len()
            )));
        }
        Ok(MicroBatch {
            shard: self.shard.start + range.start..self.shard.start + range.end,
            ..self.clone()
        })
    }
}

/// How an epoch is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochPlan {
    /// Prompts in the data set.
    pub prompts: usize,
    /// Prompts per micro-batch.
    pub prompts_per_micro_batch: usize,
    /// Micro-batches per window.
    pub accumulation: usize,
    /// Completions per prompt (G).
    pub group_size: usize,
    /// Passes over each window.
    pub num_iterations: usize,
    /// Extra prompts per window for dynamic sampling.
    pub reserve: usize,
    /// Shuffling seed.
    pub seed: u64,
}

impl EpochPlan {
    /// Prompts per window.
    pub fn window_prompts(&self) -> usize {
        self.prompts_per_micro_batch * self.accumulation
    }

    /// Windows (= generation batches) per epoch.
    pub fn windows(&self) -> usize {
        self.prompts / self.window_prompts().max(1)
    }

    /// Optimizer updates per epoch.
    pub fn updates(&self) -> usize {
        self.windows() * self.num_iterations
    }

    /// The micro-batches of `epoch`, in order.
    pub fn micro_batches(&self, epoch: usize) -> Vec<MicroBatch> {
        let mut order: Vec<usize> = (0..self.prompts).collect();
        SplitMix64::new(self.seed.wrapping_add(epoch as u64)).shuffle(&mut order);
        let per = self.window_prompts();
        let windows = self.windows();
        let mut out = Vec::with_capacity(windows * self.num_iterations * self.accumulation);
        for w in 0..windows {
            let prompts = order[w * per..(w + 1) * per].to_vec();
            let reserve = (0..self.reserve)
                .map(|k| order[((w + 1) * per + k) % order.len()])
                .collect();
            let window = Arc::new(Window {
                id: (epoch * windows + w) as u64,
                prompts,
                reserve,
            });
            for iteration in 0..self.num_iterations {
                for part in 0..self.accumulation {
                    let completions = self.prompts_per_micro_batch * self.group_size;
                    out.push(MicroBatch {
                        window: Arc::clone(&window),
                        part,
                        iteration,
                        completions,
                        shard: 0..completions,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_cut_whole_windows_and_repeat_them() {
        let plan = EpochPlan {
            prompts: 21,
            prompts_per_micro_batch: 2,
            accumulation: 2,
            group_size: 3,
            num_iterations: 2,
            reserve: 3,
            seed: 5,
        };
        assert_eq!(plan.windows(), 5); // 21 / 4, the last partial window dropped
        assert_eq!(plan.updates(), 10);
        let mbs = plan.micro_batches(0);
        assert_eq!(mbs.len(), 5 * 2 * 2);
        assert!(Arc::ptr_eq(&mbs[0].window, &mbs[3].window));
        assert_eq!((mbs[2].part, mbs[2].iteration), (0, 1));
        assert_eq!(mbs[1].rows(), 6..12, "part 1 of 2 prompts x 3 completions");
        let shard = Shard::<latent_core::CpuBackend>::shard(&mbs[1], 2..5, &Default::default());
        let shard = shard.unwrap();
        assert_eq!((shard.rows(), shard.whole_rows()), (8..11, 6..12));
        let inner = Shard::<latent_core::CpuBackend>::shard(&shard, 1..3, &Default::default());
        assert_eq!(inner.unwrap().rows(), 9..11, "a shard of a shard");
        let mut seen: Vec<usize> = mbs
            .iter()
            .step_by(4)
            .flat_map(|m| m.window.prompts.clone())
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 20, "each prompt at most once per epoch");
        assert_eq!(mbs[0].window.reserve.len(), 3);
        assert_ne!(
            plan.micro_batches(1)[0].window.prompts,
            mbs[0].window.prompts
        );
        assert_eq!(plan.micro_batches(0), mbs, "a function of the epoch");
    }
}
