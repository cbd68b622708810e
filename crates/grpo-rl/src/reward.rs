//! Rewards of completions. A [`Reward`] scores one completion's decoded text against its prompt's
//! gold answer; [`Gsm8kReward`] is HRPO's: 1.0 iff the completion contains exactly one `####` and
//! the normalised answer after it equals the normalised gold answer
//! ([`latent_datasets::answer::hrpo_reward`]; thousands separators are removed before matching,
//! where HRPO's regex turns `1,000` into `0`).

use latent_datasets::answer::{hrpo_extract, hrpo_normalize, hrpo_reward};

/// Scores completions.
pub trait Reward {
    /// The reward of `completion` (decoded, special tokens skipped) for a prompt whose gold answer
    /// is `gold`.
    fn score(&self, completion: &str, gold: &str) -> f32;
}

/// A shared reward (each data-parallel replica's step borrows the run's).
impl<R: Reward + ?Sized> Reward for &R {
    fn score(&self, completion: &str, gold: &str) -> f32 {
        (**self).score(completion, gold)
    }
}

/// HRPO's GSM8K reward.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gsm8kReward;

impl Reward for Gsm8kReward {
    fn score(&self, completion: &str, gold: &str) -> f32 {
        hrpo_reward(completion, gold) as f32
    }
}

/// HRPO's evaluation check (`eval_gsm8k.py`): the normalised answer after the last `####` equals
/// the normalised gold answer (the number of markers is not checked, unlike the reward).
pub fn answer_correct(completion: &str, gold: &str) -> bool {
    match (hrpo_extract(completion).answer, hrpo_normalize(gold)) {
        (Some(pred), Some(gold)) => pred == gold,
        _ => false,
    }
}
