//! Group-relative advantages (TRL's `_generate_and_score_completions`): each completion's reward
//! minus its group's mean, divided by a standard deviation plus 1e-4 — the group's (GRPO, HRPO),
//! the whole batch's, or none (Dr. GRPO). Standard deviations are unbiased (`torch.std`).

use serde::{Deserialize, Serialize};

/// Which standard deviation scales the centred rewards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleRewards {
    /// The group's (GRPO / HRPO).
    #[default]
    Group,
    /// The whole generation batch's.
    Batch,
    /// None: the centred rewards themselves (Dr. GRPO).
    None,
}

/// Advantages of one generation batch and the statistics logged with them.
#[derive(Debug, Clone, PartialEq)]
pub struct Advantages {
    /// One per completion, in the rewards' order.
    pub values: Vec<f32>,
    /// Mean reward.
    pub reward_mean: f64,
    /// Unbiased standard deviation of every reward of the batch.
    pub reward_std: f64,
    /// Fraction of groups whose rewards are all equal (their advantages are 0: no policy gradient).
    pub frac_reward_zero_std: f64,
}

/// Unbiased standard deviation (`n − 1`); 0 for fewer than two values.
fn std_unbiased(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 2 {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
}

/// Advantages of `rewards`, consecutive groups of `group_size` completions of one prompt.
///
/// A group whose rewards are all equal gets advantages of exactly 0 (its centred rewards are 0),
/// never NaN.
pub fn advantages(rewards: &[f32], group_size: usize, scale: ScaleRewards) -> Advantages {
    let g = group_size.max(1);
    let all: Vec<f64> = rewards.iter().map(|&r| f64::from(r)).collect();
    let batch_std = std_unbiased(&all);
    let mut values = Vec::with_capacity(rewards.len());
    let mut zero_std = 0;
    let mut groups = 0;
    for group in all.chunks(g) {
        groups += 1;
        let mean = group.iter().sum::<f64>() / group.len() as f64;
        let group_std = std_unbiased(group);
        if group.iter().all(|&r| r == group[0]) {
            zero_std += 1;
        }
        let scale = match scale {
            ScaleRewards::Group => group_std + 1e-4,
            ScaleRewards::Batch => batch_std + 1e-4,
            ScaleRewards::None => 1.0,
        };
        values.extend(group.iter().map(|&r| ((r - mean) / scale) as f32));
    }
    Advantages {
        values,
        reward_mean: all.iter().sum::<f64>() / all.len().max(1) as f64,
        reward_std: batch_std,
        frac_reward_zero_std: zero_std as f64 / groups.max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_centred_and_scaled_by_their_unbiased_std() {
        let a = advantages(
            &[1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0],
            4,
            ScaleRewards::Group,
        );
        // Group 1: mean 0.25, unbiased std 0.5.
        let s = 0.5 + 1e-4;
        assert!((a.values[0] - (0.75 / s) as f32).abs() < 1e-6);
        assert!((a.values[1] - (-0.25 / s) as f32).abs() < 1e-6);
        // Group 2: all equal → exactly 0.
        assert!(a.values[4..].iter().all(|&v| v == 0.0));
        assert_eq!(a.frac_reward_zero_std, 0.5);
        assert!(a.values.iter().all(|v| v.is_finite()));
        let none = advantages(&[1.0, 0.0], 2, ScaleRewards::None);
        assert_eq!(none.values, vec![0.5, -0.5]);
        let batch = advantages(&[1.0, 0.0, 1.0, 1.0], 2, ScaleRewards::Batch);
        // The unbiased std of [1, 0, 1, 1] is 0.5; group 1 is centred on 0.5.
        assert!((batch.values[0] - (0.5 / (0.5 + 1e-4)) as f32).abs() < 1e-6);
        assert_eq!(batch.values[2], 0.0);
    }
}
