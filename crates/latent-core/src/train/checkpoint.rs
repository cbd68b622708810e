//! Training checkpoints: a directory per checkpoint (`checkpoint-N`, `epoch_K`, `best`, `final`)
//! holding `model.safetensors` (parameters by module path; only the trainable ones when some are
//! frozen, see [`super::weights`]), `optimizer.safetensors` (AdamW moments by path, step counts
//! in `optimizer_steps.json`), `scheduler.json` (each group's schedule, checked on load, see
//! [`super::scheduler_state`]), `training_state.json` (where to resume: epoch, next micro-batch,
//! global step; best metric; the caller's data state) and the run's `config.json`. Each checkpoint
//! is written to a temporary directory and renamed into place, so an interrupted write never
//! replaces a good checkpoint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::best::BestMetric;
use super::groups::GroupedOptimizer;
use super::precision::LossScale;
use super::scheduler_state::{check_scheduler, write_scheduler};
use super::trainer::StepIndex;
use super::weights::{load_training_weights, save_training_weights};
use crate::atomic::write_atomic;
use crate::hf::safetensors::{write_safetensors, Checkpoint, SaveDtype};
use crate::stop::StopFlag;
use crate::{CoreError, Result};

/// Where a run stands: the next micro-batch to process and the updates done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Epoch of the next micro-batch.
    pub epoch: usize,
    /// Index of the next micro-batch within its epoch.
    pub next_batch: usize,
    /// Optimizer updates done.
    pub global_step: usize,
    /// The loss scale of an f16 run (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<LossScale>,
}

impl Position {
    /// Where a run stands just before micro-batch `at` when `at` opens its update's accumulation
    /// window (no gradient of that update accumulated yet): resuming there redoes the whole update.
    /// What a driver checkpoints when a stop arrives inside the first micro-batch of an update
    /// (e.g. during the rollouts a GRPO window starts with).
    pub fn before(at: StepIndex) -> Self {
        Self {
            epoch: at.epoch,
            next_batch: at.micro_batch,
            global_step: at.update,
            // Not known inside an update: an f16 run resumed from here starts its scale afresh.
            loss_scale: None,
        }
    }
}

/// Key of [`TrainingState::extra`] marking a checkpoint written while an evaluation was cut short.
pub const EVALUATION_PENDING: &str = "evaluation_pending";

/// `training_state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingState {
    /// Where to resume.
    pub position: Position,
    /// Best metric so far, if tracked.
    pub best: Option<BestMetric>,
    /// Caller state needed to resume exactly (data shuffling seed, RNG state, ...).
    pub extra: Value,
}

impl TrainingState {
    /// Whether the checkpoint was written while the evaluation due at its position was cut short
    /// (see [`TrainingState::with_evaluation_pending`]): a resumed run evaluates first.
    pub fn evaluation_pending(&self) -> bool {
        self.extra.get(EVALUATION_PENDING) == Some(&Value::Bool(true))
    }

    /// Marks the evaluation due at this position as not done (`extra.evaluation_pending`; a
    /// non-object `extra` is kept under `extra.value`).
    pub fn with_evaluation_pending(mut self) -> Self {
        let mut extra = match std::mem::take(&mut self.extra) {
            Value::Object(map) => map,
            Value::Null => serde_json::Map::new(),
            other => serde_json::Map::from_iter([("value".to_string(), other)]),
        };
        extra.insert(EVALUATION_PENDING.into(), Value::Bool(true));
        self.extra = Value::Object(extra);
        self
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CoreError + '_ {
    move |e| CoreError::io(path, e)
}

pub(crate) fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CoreError::json(path, &e))?;
    write_atomic(path, text.as_bytes())
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text).map_err(|e| CoreError::json(path, &e))
}

/// Writes a checkpoint directory `dir` (replacing an existing one only once the new one is complete).
pub fn save_checkpoint<B: AutodiffBackend, M: AutodiffModule<B>>(
    dir: &Path,
    model: &M,
    optimizer: &GroupedOptimizer<B, M>,
    state: &TrainingState,
    config: &Value,
) -> Result<()> {
    let tmp = dir.with_extension("tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    save_training_weights(&tmp.join("model.safetensors"), model)?;
    let opt = optimizer.state_tensors(model);
    write_safetensors(
        &tmp.join("optimizer.safetensors"),
        &opt.tensors,
        SaveDtype::F32,
    )?;
    write_json(&tmp.join("optimizer_steps.json"), &opt.steps)?;
    write_scheduler(
        &tmp.join("scheduler.json"),
        optimizer,
        state.position.global_step,
    )?;
    write_json(&tmp.join("training_state.json"), state)?;
    write_json(&tmp.join("config.json"), config)?;
    let old = dir.with_extension("old");
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(io(dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(io(dir))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    Ok(())
}

/// Restores model parameters and optimizer state from `dir` into a freshly built `model` (base
/// weights loaded and adapters attached as the run did) and `optimizer` (configured as the run's);
/// returns the model and the state to resume from (pass its position as
/// [`super::LoopConfig::start`]). A schedule that differs from the checkpoint's is an error naming
/// `scheduler.json` and the setting.
pub fn load_checkpoint<B: AutodiffBackend, M: AutodiffModule<B>>(
    dir: &Path,
    model: M,
    optimizer: &mut GroupedOptimizer<B, M>,
) -> Result<(M, TrainingState)> {
    let state: TrainingState = read_json(&dir.join("training_state.json"))?;
    check_scheduler(
        &dir.join("scheduler.json"),
        optimizer,
        state.position.global_step,
    )?;
    let model = load_training_weights(&dir.join("model.safetensors"), model)?;
    let opt = Checkpoint::open(&[dir.join("optimizer.safetensors")])?;
    let steps: BTreeMap<String, usize> = read_json(&dir.join("optimizer_steps.json"))?;
    optimizer.load_state_tensors(&model, &opt, &steps)?;
    Ok((model, state))
}

/// When to write checkpoints during a run, and how many periodic ones to keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointPolicy {
    /// Output directory of the run.
    pub dir: PathBuf,
    /// Write `checkpoint-N` every this many updates (0 = never).
    pub every_updates: usize,
    /// Periodic checkpoints to keep (oldest removed first; 0 = keep all).
    pub keep_last: usize,
    /// Write `epoch_K` at the end of every epoch.
    pub per_epoch: bool,
}

impl CheckpointPolicy {
    /// Saves what is due after an update that leaves the run at `state.position`. When `stop` has
    /// been requested (Ctrl-C), also writes `checkpoint-N` and returns [`CoreError::Interrupted`].
    pub fn after_update<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
        model: &M,
        optimizer: &GroupedOptimizer<B, M>,
        state: &TrainingState,
        config: &Value,
        stop: Option<&StopFlag>,
    ) -> Result<()> {
        let step = state.position.global_step;
        if self.per_epoch && state.position.next_batch == 0 && state.position.epoch > 0 {
            let dir = self.dir.join(format!("epoch_{}", state.position.epoch - 1));
            save_checkpoint(&dir, model, optimizer, state, config)?;
        }
        if stop.is_some_and(StopFlag::is_requested) {
            return Err(self.interrupt(model, optimizer, state, config));
        }
        if self.every_updates > 0 && step.is_multiple_of(self.every_updates) {
            self.save_periodic(model, optimizer, state, config)?;
        }
        Ok(())
    }

    /// Ends a run on a stop request: writes `checkpoint-N` for `state` (N = its global step) and
    /// returns the [`CoreError::Interrupted`] naming it, or the error that kept it from being
    /// written. For drivers whose stop arrives outside [`CheckpointPolicy::after_update`] (during
    /// a rollout: [`Position::before`]; during an evaluation:
    /// [`TrainingState::with_evaluation_pending`]).
    pub fn interrupt<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
        model: &M,
        optimizer: &GroupedOptimizer<B, M>,
        state: &TrainingState,
        config: &Value,
    ) -> CoreError {
        match self.save_periodic(model, optimizer, state, config) {
            Ok(checkpoint) => CoreError::Interrupted {
                step: state.position.global_step,
                checkpoint,
            },
            Err(e) => e,
        }
    }

    /// Runs an evaluation due at `state` (an update's end, typically an epoch's): a stop request
    /// during it (`evaluate` returns [`CoreError::StopRequested`]) writes `checkpoint-N` for
    /// `state` marked [`TrainingState::with_evaluation_pending`], so that the resumed run
    /// evaluates first, and returns [`CoreError::Interrupted`] naming it.
    pub fn evaluate_or_interrupt<B: AutodiffBackend, M: AutodiffModule<B>, T>(
        &self,
        model: &M,
        optimizer: &GroupedOptimizer<B, M>,
        state: &TrainingState,
        config: &Value,
        evaluate: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        match evaluate() {
            Err(CoreError::StopRequested { .. }) => {
                let pending = state.clone().with_evaluation_pending();
                Err(self.interrupt(model, optimizer, &pending, config))
            }
            other => other,
        }
    }

    /// Writes `checkpoint-N` (N = the state's global step), prunes old ones, returns its directory.
    fn save_periodic<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
        model: &M,
        optimizer: &GroupedOptimizer<B, M>,
        state: &TrainingState,
        config: &Value,
    ) -> Result<PathBuf> {
        let dir = self
            .dir
            .join(format!("checkpoint-{}", state.position.global_step));
        save_checkpoint(&dir, model, optimizer, state, config)?;
        self.prune()?;
        Ok(dir)
    }

    /// After an evaluation: updates `best` from the logged metrics (its key must be among them) and,
    /// on improvement, writes the `best` checkpoint. Returns whether it improved.
    pub fn after_evaluation<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
        model: &M,
        optimizer: &GroupedOptimizer<B, M>,
        state: &mut TrainingState,
        config: &Value,
        best: &mut BestMetric,
        logged: &[(String, f64)],
    ) -> Result<bool> {
        let improved = best.update_from(logged)?;
        state.best = Some(best.clone());
        if improved {
            save_checkpoint(&self.dir.join("best"), model, optimizer, state, config)?;
        }
        Ok(improved)
    }

    /// Writes the `final` checkpoint.
    pub fn save_final<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
        model: &M,
        optimizer: &GroupedOptimizer<B, M>,
        state: &TrainingState,
        config: &Value,
    ) -> Result<()> {
        save_checkpoint(&self.dir.join("final"), model, optimizer, state, config)
    }

    /// The directories in `dir` named `<prefix><number>`, by number.
    fn numbered(&self, prefix: &str) -> Result<Vec<(usize, PathBuf)>> {
        let mut found = Vec::new();
        if !self.dir.exists() {
            return Ok(found);
        }
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let path = entry.map_err(io(&self.dir))?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if let Some(n) = name
                .strip_prefix(prefix)
                .and_then(|s| s.parse::<usize>().ok())
            {
                if path.is_dir() {
                    found.push((n, path));
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// The periodic checkpoints in `dir`, oldest first.
    pub fn periodic(&self) -> Result<Vec<(usize, PathBuf)>> {
        self.numbered("checkpoint-")
    }

    /// The checkpoint to resume from: the newest of the periodic (`checkpoint-N`) and per-epoch
    /// (`epoch_K`) ones, by the global step in their `training_state.json` (a periodic one on a tie:
    /// both hold the same state).
    pub fn latest(&self) -> Result<Option<PathBuf>> {
        let mut newest: Option<((usize, bool), PathBuf)> = None;
        let candidates = self
            .numbered("epoch_")?
            .into_iter()
            .map(|(_, p)| (false, p))
            .chain(self.periodic()?.into_iter().map(|(_, p)| (true, p)));
        for (periodic, dir) in candidates {
            let state: TrainingState = read_json(&dir.join("training_state.json"))?;
            let key = (state.position.global_step, periodic);
            if newest.as_ref().is_none_or(|(best, _)| key > *best) {
                newest = Some((key, dir));
            }
        }
        Ok(newest.map(|(_, dir)| dir))
    }

    fn prune(&self) -> Result<()> {
        if self.keep_last == 0 {
            return Ok(());
        }
        let all = self.periodic()?;
        for (_, path) in all.iter().take(all.len().saturating_sub(self.keep_last)) {
            std::fs::remove_dir_all(path).map_err(io(path))?;
        }
        Ok(())
    }
}
