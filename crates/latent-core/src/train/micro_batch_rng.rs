//! Reproducible randomness inside a loss: the training loop seeds the backend's generator before
//! every micro-batch from the run's seed and the micro-batch's place in the run
//! ([`micro_batch_seed`]), and holds the generator until the micro-batch's loss is computed. Dropout
//! masks (LoRA dropout, a projection's dropout) are then a function of `(seed, update, epoch,
//! micro-batch)`: a run resumed from any checkpoint draws the same masks as an uninterrupted one,
//! with no generator state to save beyond the position in `training_state.json`.

use burn::tensor::backend::Backend;

use super::trainer::StepIndex;
use crate::backend_rng::{seed_backend, BackendRng};

/// One step of SplitMix64 (Steele et al.): a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of the backend generator for micro-batch `at` of a run seeded with `seed`: distinct
/// micro-batches get unrelated streams, the same micro-batch always the same one.
pub fn micro_batch_seed(seed: u64, at: StepIndex) -> u64 {
    [at.update, at.epoch, at.micro_batch]
        .into_iter()
        .fold(mix(seed), |acc, v| mix(acc ^ v as u64))
}

/// Seeds backend `B`'s generator for micro-batch `at` and holds it (see [`seed_backend`]).
pub(crate) fn seed_micro_batch<B: Backend>(
    device: &B::Device,
    seed: u64,
    at: StepIndex,
) -> BackendRng {
    seed_backend::<B>(device, micro_batch_seed(seed, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_micro_batch_and_seed_has_its_own_stream() {
        let at = |update, epoch, micro_batch| StepIndex {
            update,
            epoch,
            micro_batch,
        };
        let seeds = [
            micro_batch_seed(1, at(0, 0, 0)),
            micro_batch_seed(1, at(0, 0, 1)),
            micro_batch_seed(1, at(1, 0, 2)),
            micro_batch_seed(1, at(3, 1, 0)),
            micro_batch_seed(2, at(0, 0, 0)),
        ];
        for (i, a) in seeds.iter().enumerate() {
            for b in &seeds[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(micro_batch_seed(1, at(3, 1, 0)), seeds[3]);
    }
}
