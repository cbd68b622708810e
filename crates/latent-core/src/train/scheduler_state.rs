//! `scheduler.json` of a training checkpoint: the updates done, each group's schedule and the
//! learning rate of the next update.
//!
//! A schedule is a function of the update index, so resuming needs no state beyond the position;
//! what the file guards against is resuming under a different schedule (another peak lr, warm-up,
//! shape or total number of updates, e.g. after changing the epochs or the accumulation), which
//! would silently continue on another curve. Loading checks the run's schedules against it and
//! refuses a difference, naming the file and the setting. Files written before the schedules were
//! recorded are checked through their next learning rates.

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
        let field = |f: &str| format!("schedules.{name}.{f}");
        if had.kind != now.kind {
            return Err(mismatch(
                field("kind"),
                format!("{:?}", had.kind),
                format!("{:?}", now.kind),
            ));
        }
        if had.total_updates != now.total_updates {
            return Err(mismatch(
                field("total_updates"),
                had.total_updates.to_string(),
                format!(
                    "{} (epochs, batches per epoch or accumulation changed?)",
                    now.total_updates
                ),
            ));
        }
        if !close(had.peak_lr, now.peak_lr) {
            return Err(mismatch(
                field("peak_lr"),
                had.peak_lr.to_string(),
                now.peak_lr.to_string(),
            ));
        }
        if !close(had.warmup_ratio, now.warmup_ratio) {
            return Err(mismatch(
                field("warmup_ratio"),
                had.warmup_ratio.to_string(),
                now.warmup_ratio.to_string(),
            ));
        }
    }
    Ok(())
}
