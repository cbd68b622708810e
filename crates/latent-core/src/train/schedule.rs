//! Learning-rate schedules stepped once per optimizer update, with transformers' semantics
//! (`get_{constant,linear,cosine}_schedule_with_warmup`): the lr of update `k` (0-based) is
//! `peak · λ(k)`, so the first warm-up update runs at lr 0.

use serde::{Deserialize, Serialize};

/// The shape after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// Constant after warm-up.
    Constant,
    /// Linear decay to 0 at the last update.
    Linear,
    /// Half-cosine decay to 0 at the last update.
    Cosine,
}

/// A warm-up + decay schedule over `total_updates` optimizer updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// Shape after warm-up.
    pub kind: ScheduleKind,
    /// Peak learning rate.
    pub peak_lr: f64,
    /// Fraction of the updates spent warming up (rounded up, as transformers does).
    pub warmup_ratio: f64,
    /// Total optimizer updates of the run (see [`total_updates`]).
    pub total_updates: usize,
}

/// Updates in a run: `epochs × ceil(batches_per_epoch / accumulation)` (the last partial
/// accumulation window of an epoch still updates).
pub fn total_updates(epochs: usize, batches_per_epoch: usize, accumulation: usize) -> usize {
    epochs * batches_per_epoch.div_ceil(accumulation.max(1))
}

impl LrSchedule {
    /// Warm-up updates: `ceil(total · ratio)`.
    pub fn warmup_updates(&self) -> usize {
        (self.total_updates as f64 * self.warmup_ratio).ceil() as usize
    }

    /// The multiplier λ(k) of update `k` (0-based).
    pub fn factor(&self, update: usize) -> f64 {
        let warmup = self.warmup_updates();
        if update < warmup {
            return update as f64 / warmup.max(1) as f64;
        }
        let decay_span = self.total_updates.saturating_sub(warmup).max(1) as f64;
        let progress = (update - warmup) as f64 / decay_span;
        match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Linear => (1.0 - progress).max(0.0),
            ScheduleKind::Cosine => {
                (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
            }
        }
    }

    /// The learning rate of update `k` (0-based).
    pub fn lr(&self, update: usize) -> f64 {
        self.peak_lr * self.factor(update)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(kind: ScheduleKind, warmup_ratio: f64, total: usize) -> LrSchedule {
        LrSchedule {
            kind,
            peak_lr: 1.0,
            warmup_ratio,
            total_updates: total,
        }
    }

    #[test]
    fn total_updates_round_up_partial_windows() {
        assert_eq!(total_updates(3, 10, 4), 9);
        assert_eq!(total_updates(2, 8, 4), 4);
        assert_eq!(total_updates(1, 1, 8), 1);
    }

    #[test]
    fn matches_transformers_lambdas() {
        // Values of transformers' lr_lambda for 10 updates and 3 warm-up updates (ratio 0.3).
        let linear = schedule(ScheduleKind::Linear, 0.3, 10);
        assert_eq!(linear.warmup_updates(), 3);
        let expected = [
            0.0,
            1.0 / 3.0,
            2.0 / 3.0,
            1.0,
            6.0 / 7.0,
            5.0 / 7.0,
            4.0 / 7.0,
            3.0 / 7.0,
            2.0 / 7.0,
            1.0 / 7.0,
        ];
        for (k, e) in expected.iter().enumerate() {
            assert!((linear.factor(k) - e).abs() < 1e-12, "linear {k}");
        }
        let cosine = schedule(ScheduleKind::Cosine, 0.3, 10);
        let progress = |k: usize| (k - 3) as f64 / 7.0;
        for k in 3..10 {
            let e = 0.5 * (1.0 + (std::f64::consts::PI * progress(k)).cos());
            assert!((cosine.factor(k) - e).abs() < 1e-12, "cosine {k}");
        }
        assert!((cosine.factor(10)).abs() < 1e-12, "cosine ends at 0");
        let constant = schedule(ScheduleKind::Constant, 0.0, 10);
        assert_eq!(constant.factor(0), 1.0);
        assert_eq!(constant.factor(9), 1.0);
    }
}
