//! Training checkpoints: a directory per checkpoint (`checkpoint-N`, `epoch_K`, `best`, `final`)
//! holding `model.safetensors` (parameters by module path), `optimizer.safetensors` (AdamW moments
//! by path, step counts in its metadata file), `scheduler.json`, `training_state.json` (where to
//! resume: epoch, next micro-batch, global step; best metric; the caller's RNG/data state) and the
//! run's `config.json`. Each checkpoint is written to a temporary directory and renamed into place,
//! so an interrupted write never replaces a good checkpoint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::best::BestMetric;
use super::groups::GroupedOptimizer;
use super::precision::LossScale;
use super::state_dict::{load_module_tensors, module_tensors};
use super::stop::StopFlag;
use crate::atomic::write_atomic;
use crate::hf::safetensors::{write_safetensors, Checkpoint, SaveDtype};
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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CoreError + '_ {
    move |e| CoreError::io(path, e)
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CoreError::json(path, &e))?;
    write_atomic(path, text.as_bytes())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
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
    write_safetensors(
        &tmp.join("model.safetensors"),
        &module_tensors(model),
        SaveDtype::F32,
    )?;
    let opt = optimizer.state_tensors(model);
    write_safetensors(
        &tmp.join("optimizer.safetensors"),
        &opt.tensors,
        SaveDtype::F32,
    )?;
    write_json(&tmp.join("optimizer_steps.json"), &opt.steps)?;
    let lrs: BTreeMap<String, f64> = optimizer
        .learning_rates(state.position.global_step)
        .into_iter()
        .collect();
    write_json(
        &tmp.join("scheduler.json"),
        &serde_json::json!({"global_step": state.position.global_step, "next_lr": lrs}),
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

/// Restores model parameters and optimizer state from `dir`; returns the model and the state to
/// resume from (pass its position as [`super::LoopConfig::start`]).
pub fn load_checkpoint<B: AutodiffBackend, M: AutodiffModule<B>>(
    dir: &Path,
    model: M,
    optimizer: &mut GroupedOptimizer<B, M>,
) -> Result<(M, TrainingState)> {
    let weights = Checkpoint::open(&[dir.join("model.safetensors")])?;
    let model = load_module_tensors(model, &weights)?;
    let opt = Checkpoint::open(&[dir.join("optimizer.safetensors")])?;
    let steps: BTreeMap<String, usize> = read_json(&dir.join("optimizer_steps.json"))?;
    optimizer.load_state_tensors(&model, &opt, &steps)?;
    let state: TrainingState = read_json(&dir.join("training_state.json"))?;
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
        let stopping = stop.is_some_and(StopFlag::is_requested);
        if stopping || (self.every_updates > 0 && step.is_multiple_of(self.every_updates)) {
            save_checkpoint(
                &self.dir.join(format!("checkpoint-{step}")),
                model,
                optimizer,
                state,
                config,
            )?;
            self.prune()?;
        }
        if self.per_epoch && state.position.next_batch == 0 && state.position.epoch > 0 {
            let dir = self.dir.join(format!("epoch_{}", state.position.epoch - 1));
            save_checkpoint(&dir, model, optimizer, state, config)?;
        }
        if stopping {
            return Err(CoreError::Interrupted {
                step,
                checkpoint: self.dir.join(format!("checkpoint-{step}")),
            });
        }
        Ok(())
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

    /// The periodic checkpoints in `dir`, oldest first.
    pub fn periodic(&self) -> Result<Vec<(usize, PathBuf)>> {
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
            if let Some(step) = name
                .strip_prefix("checkpoint-")
                .and_then(|s| s.parse::<usize>().ok())
            {
                if path.is_dir() {
                    found.push((step, path));
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// The newest periodic checkpoint, to resume from.
    pub fn latest(&self) -> Result<Option<PathBuf>> {
        Ok(self.periodic()?.pop().map(|(_, p)| p))
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
