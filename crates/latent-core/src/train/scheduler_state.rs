//! `scheduler.json` of a training checkpoint: the updates done, each group's schedule and the
//! learning rate of the next update.
//!
//! A schedule is a function of the update index, so resuming needs no state beyond the position;
//! what the file guards against is resuming under a different schedule (another peak lr, warm-up,
//! shape or total number of updates, e.g. after changing the epochs or the accumulation), which
//! would silently continue on another curve. Loading compares the two schedules on every update
//! they both cover, those already done included (a finished run resumed with more epochs covers
//! no update after the resume point, but its cosine was fitted to the shorter run), and refuses
//! the first learning rate that differs, naming the file, the group, the update and both
//! schedules (so a longer run under a constant schedule without warm-up may continue a shorter
//! one). Files written before the schedules were
//! recorded are checked through their next learning rate.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::groups::GroupedOptimizer;
use super::schedule::LrSchedule;
use crate::{CoreError, Result};

/// The file's contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SchedulerState {
    /// Updates done.
    global_step: usize,
    /// Learning rate of the next update, per group.
    next_lr: BTreeMap<String, f64>,
    /// Each group's schedule (absent in files of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schedules: Option<BTreeMap<String, LrSchedule>>,
}

/// The keys of a map, for messages.
fn names<V>(m: &BTreeMap<String, V>) -> String {
    format!("{:?}", m.keys().collect::<Vec<_>>())
}

/// Equal up to the last bits a decimal round trip may change.
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

/// The first update, among those both schedules cover, whose learning rates differ (a longer run
/// under a constant schedule without warm-up continues the same curve).
fn first_difference(had: &LrSchedule, now: &LrSchedule) -> Option<usize> {
    (0..had.total_updates.min(now.total_updates)).find(|&k| !close(had.lr(k), now.lr(k)))
}

/// Writes `path` for `optimizer` after `global_step` updates.
pub(crate) fn write_scheduler<B: AutodiffBackend, M: AutodiffModule<B>>(
    path: &Path,
    optimizer: &GroupedOptimizer<B, M>,
    global_step: usize,
) -> Result<()> {
    let state = SchedulerState {
        global_step,
        next_lr: optimizer.learning_rates(global_step).into_iter().collect(),
        schedules: Some(optimizer.schedules().into_iter().collect()),
    };
    super::checkpoint::write_json(path, &state)
}

/// Checks the schedule saved in `path` (after `global_step` updates, as `training_state.json`
/// says) against `optimizer`'s.
pub(crate) fn check_scheduler<B: AutodiffBackend, M: AutodiffModule<B>>(
    path: &Path,
    optimizer: &GroupedOptimizer<B, M>,
    global_step: usize,
) -> Result<()> {
    let saved: SchedulerState = super::checkpoint::read_json(path)?;
    let mismatch = |key: String, checkpoint: String, run: String| CoreError::ResumeMismatch {
        path: path.to_path_buf(),
        key,
        checkpoint,
        run,
    };
    if saved.global_step != global_step {
        return Err(CoreError::InvalidConfig {
            path: path.to_path_buf(),
            key: "global_step".into(),
            reason: format!(
                "{} updates, but training_state.json says {global_step}",
                saved.global_step
            ),
        });
    }
    let run: BTreeMap<String, LrSchedule> = optimizer.schedules().into_iter().collect();
    let Some(schedules) = saved.schedules else {
        if names(&saved.next_lr) != names(&run) {
            return Err(mismatch(
                "the parameter groups".into(),
                names(&saved.next_lr),
                names(&run),
            ));
        }
        for (name, lr) in optimizer.learning_rates(global_step) {
            let had = saved.next_lr[&name];
            if !close(had, lr) {
                return Err(mismatch(
                    format!("next_lr.{name}"),
                    had.to_string(),
                    lr.to_string(),
                ));
            }
        }
        return Ok(());
    };
    if names(&schedules) != names(&run) {
        return Err(mismatch(
            "the parameter groups".into(),
            names(&schedules),
            names(&run),
        ));
    }
    for (name, now) in &run {
        let had = &schedules[name];
        if let Some(k) = first_difference(had, now) {
            let describe = |s: &LrSchedule| {
                format!(
                    "lr {:e} at update {k} ({:?}, peak {:e}, warm-up ratio {}, {} updates)",
                    s.lr(k),
                    s.kind,
                    s.peak_lr,
                    s.warmup_ratio,
                    s.total_updates
                )
            };
            return Err(mismatch(
                format!("schedules.{name}"),
                describe(had),
                describe(now),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::ScheduleKind;

    fn schedule(kind: ScheduleKind, warmup_ratio: f64, total_updates: usize) -> LrSchedule {
        LrSchedule {
            kind,
            peak_lr: 1e-3,
            warmup_ratio,
            total_updates,
        }
    }

    #[test]
    fn any_rate_both_schedules_cover_that_changes_is_a_difference() {
        use ScheduleKind::{Constant, Cosine};
        let same = schedule(Cosine, 0.1, 20);
        assert_eq!(first_difference(&same, &same.clone()), None);
        // More updates: the cosine (and a constant with warm-up) changes shape, also where the
        // first run already trained (a finished run resumed with more epochs).
        assert!(first_difference(&same, &schedule(Cosine, 0.1, 40)).is_some());
        assert!(first_difference(&schedule(Cosine, 0.0, 20), &schedule(Cosine, 0.0, 40)).is_some());
        assert!(
            first_difference(&schedule(Constant, 0.1, 20), &schedule(Constant, 0.1, 40)).is_some()
        );
        // A constant schedule without warm-up continues the same rates.
        assert_eq!(
            first_difference(&schedule(Constant, 0.0, 20), &schedule(Constant, 0.0, 40)),
            None
        );
    }
}
