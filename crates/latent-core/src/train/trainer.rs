//! The one training loop of the workspace: gradient accumulation, global-norm clipping once per
//! update on the accumulated gradient, per-group learning-rate schedules stepped per update, mixed
//! precision with f32 master weights ([`super::precision`]), a NaN/Inf guard. Method crates supply
//! only a [`TrainStep`] (the loss of a micro-batch).

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::DType;

use super::checkpoint::Position;
use super::clip::{global_grad_norm, scale_to_max_norm};
use super::groups::GroupedOptimizer;
use super::micro_batch_rng::seed_micro_batch;
use super::precision::{grads_to_master, master_copy, working_copy, Precision};
use crate::{CoreError, Result};

/// The loss of one micro-batch.
#[derive(Debug, Clone)]
pub struct StepLoss<B: Backend> {
    /// Scalar loss `[1]`, the mean over the micro-batch.
    pub loss: Tensor<B, 1>,
    /// Named terms to log (e.g. `ce`, `kd`), as host numbers.
    pub terms: Vec<(String, f64)>,
}

/// Where in the run a micro-batch is (e.g. to seed rollouts from it, so a resumed run draws the
/// same ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StepIndex {
    /// 0-based optimizer update the micro-batch contributes to.
    pub update: usize,
    /// 0-based epoch.
    pub epoch: usize,
    /// 0-based micro-batch within the epoch.
    pub micro_batch: usize,
}

/// What a method crate implements: the loss of a micro-batch under the current model.
pub trait TrainStep<B: AutodiffBackend, M: AutodiffModule<B>> {
    /// One micro-batch.
    type Batch;
    /// The micro-batch loss (a mean over its examples), at position `at` of the run.
    ///
    /// The loop holds the process-wide backend RNG lock (seeded for the micro-batch, for
    /// reproducible dropout) while this runs: work that waits on other threads, such as an
    /// exchange between data-parallel replicas, belongs in [`TrainStep::prepare`].
    fn loss(&mut self, model: &M, batch: &Self::Batch, at: StepIndex) -> Result<StepLoss<B>>;

    /// Work for a micro-batch done before its loss, outside the backend RNG lock (GRPO rolls out
    /// a window here, sharing the rollouts between data-parallel replicas). In a data-parallel run
    /// it sees the whole micro-batch, not the replica's shard. The default does nothing.
    fn prepare(&mut self, _model: &M, _batch: &Self::Batch, _at: StepIndex) -> Result<()> {
        Ok(())
    }

    /// Edits the accumulated gradient of an update before clipping (e.g. zeroing the rows of an
    /// embedding that must stay fixed while its new rows train). The default leaves it alone.
    fn adjust_gradients(&mut self, _model: &M, _grads: &mut GradientsParams) {}

    /// Turns the accumulated (and adjusted) gradient of an update into the one that is clipped
    /// and applied: data-parallel training all-reduces it across the replicas here
    /// ([`super::data_parallel`]). The default returns it unchanged.
    fn sync_gradients(&mut self, _model: &M, grads: GradientsParams) -> Result<GradientsParams> {
        Ok(grads)
    }

    /// Called once, before the first micro-batch, on each replica of a data-parallel run with
    /// more than one replica ([`super::train_data_parallel`]): a step that shares out work of its
    /// own (GRPO's rollouts) keeps `replica` to exchange results with the other replicas. The
    /// default ignores it (the micro-batches are sharded for the step either way).
    fn join_replicas(&mut self, _replica: super::Replica<B::InnerBackend>) {}
}

/// Loop settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoopConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Micro-batches per update.
    pub accumulation: usize,
    /// Global-norm clipping threshold (`None`: no clipping).
    pub max_grad_norm: Option<f64>,
    /// Where to start: `Position::default()` for a new run, a checkpoint's position to resume.
    pub start: Position,
    /// Numerics of forward, backward and update ([`Precision::F32`]: the parameters' own dtype).
    pub precision: Precision,
    /// Seed of the backend generator streams: each micro-batch's loss runs with the generator
    /// seeded from `(seed, update, epoch, micro-batch)` (see [`super::micro_batch_rng`]), so
    /// dropout masks are the same in a resumed run.
    pub seed: u64,
}

/// One optimizer update, as logged.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRecord {
    /// 0-based update index.
    pub update: usize,
    /// 0-based epoch.
    pub epoch: usize,
    /// Micro-batches in this update's window.
    pub micro_batches: usize,
    /// Mean micro-batch loss over the window.
    pub loss: f64,
    /// Global gradient norm of the accumulated gradient, before clipping.
    pub grad_norm: f64,
    /// Learning rate of each group for this update.
    pub lrs: Vec<(String, f64)>,
    /// Mean of each named term over the window.
    pub terms: Vec<(String, f64)>,
    /// The loss scale this update's backward pass used (f16 runs only).
    pub loss_scale: Option<f64>,
    /// Whether the optimizer step was skipped because the scaled gradients overflowed (f16 runs
    /// only; the learning-rate schedule still advances, as with PyTorch's `GradScaler`).
    pub skipped: bool,
}

/// Runs `config.epochs` epochs from `config.start`. `data(epoch)` gives the micro-batches of an epoch
/// (shuffled as the caller likes, but as a function of the epoch so a resumed run sees the same
/// order); `on_update` sees every update with the model, the optimizer (to save a checkpoint) and
/// the position to resume from. Returns the trained model and the updates of this call.
///
/// Each micro-batch loss is divided by the size of its accumulation window (`accumulation`, or
/// fewer for the last partial window of an epoch, which still updates), so every update follows the
/// mean loss of its window. Gradients are cleared after each update.
///
/// With `config.precision` bf16 or f16 the model is first made the master copy (trainable
/// parameters in f32, frozen ones in the compute dtype); each micro-batch's loss runs on a copy cast
/// to the compute dtype, whose gradients come back to f32 before clipping; `on_update` and the
/// returned model see the master.
pub fn train<B, M, S, D, I>(
    model: M,
    step: &mut S,
    mut data: D,
    optimizer: &mut GroupedOptimizer<B, M>,
    config: &LoopConfig,
    mut on_update: impl FnMut(&M, &GroupedOptimizer<B, M>, &UpdateRecord, Position) -> Result<()>,
) -> Result<(M, Vec<UpdateRecord>)>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    S: TrainStep<B, M>,
    D: FnMut(usize) -> I,
    I: IntoIterator<Item = S::Batch>,
    I::IntoIter: ExactSizeIterator,
{
    let accumulation = config.accumulation.max(1);
    let precision = config.precision;
    let mixed = precision != Precision::F32;
    let mut model = master_copy(model, precision);
    // The compute-dtype copy of a mixed-precision run (an f32 run works on the model itself, so
    // the optimizer can update its tensors in place).
    let mut working = mixed.then(|| working_copy(&model, precision));
    let mut scale = config
        .start
        .loss_scale
        .or_else(|| precision.initial_loss_scale());
    let mut records = Vec::new();
    let mut update = config.start.global_step;
    let device = model.devices().into_iter().next().unwrap_or_default();
    for epoch in config.start.epoch..config.epochs {
        let batches = data(epoch).into_iter();
        let n = batches.len();
        let skip = if epoch == config.start.epoch {
            config.start.next_batch
        } else {
            0
        };
        let mut accumulator = GradientsAccumulator::<M>::new();
        let mut window: Vec<(f64, Vec<(String, f64)>)> = Vec::new();
        for (i, batch) in batches.enumerate().skip(skip) {
            let window_start = i - i % accumulation;
            let window_len = accumulation.min(n - window_start);
            let at = StepIndex {
                update,
                epoch,
                micro_batch: i,
            };
            let current = working.as_ref().unwrap_or(&model);
            step.prepare(current, &batch, at)?;
            let rng = seed_micro_batch::<B>(&device, config.seed, at);
            let out = step.loss(current, &batch, at)?;
            let loss_value: f64 = out.loss.clone().into_scalar().elem();
            drop(rng);
            if !loss_value.is_finite() {
                return Err(CoreError::NonFinite(format!(
                    "loss is {loss_value} at epoch {epoch}, micro-batch {i}, update {update}"
                )));
            }
            let loss = if mixed {
                out.loss.cast(DType::F32)
            } else {
                out.loss
            };
            let factor = scale.map_or(1.0, |s| s.factor()) / window_len as f64;
            let grads = (loss * factor).backward();
            accumulator.accumulate(current, GradientsParams::from_grads(grads, current));
            window.push((loss_value, out.terms));
            if i + 1 == window_start + window_len {
                let mut grads = accumulator.grads();
                if mixed {
                    let unscale = scale.map_or(1.0, |s| 1.0 / s.factor());
                    grads_to_master(&model, &mut grads, unscale);
                }
                step.adjust_gradients(&model, &mut grads);
                let mut grads = step.sync_gradients(&model, grads)?;
                let grad_norm = global_grad_norm::<B, M>(&model, &grads);
                let overflow = !grad_norm.is_finite();
                if overflow && scale.is_none() {
                    return Err(CoreError::NonFinite(format!(
                        "gradient norm is {grad_norm} at epoch {epoch}, update {update}"
                    )));
                }
                let lrs = optimizer.learning_rates(update);
                let used_scale = scale.map(|s| s.factor());
                if !overflow {
                    if let Some(max) = config.max_grad_norm {
                        scale_to_max_norm::<B, M>(&model, &mut grads, grad_norm, max);
                    }
                    // Drop the working copy first: the master's tensors are then its only owners.
                    working = None;
                    model = optimizer.step(update, model, grads);
                    if mixed {
                        working = Some(working_copy(&model, precision));
                    }
                }
                scale = scale.map(|s| s.after_update(!overflow));
                let record = UpdateRecord {
                    update,
                    epoch,
                    micro_batches: window.len(),
                    loss: window.iter().map(|(l, _)| l).sum::<f64>() / window.len() as f64,
                    grad_norm,
                    lrs,
                    terms: mean_terms(&window),
                    loss_scale: used_scale,
                    skipped: overflow,
                };
                window.clear();
                let (next_epoch, next_batch) = if i + 1 == n {
                    (epoch + 1, 0)
                } else {
                    (epoch, i + 1)
                };
                let next = Position {
                    epoch: next_epoch,
                    next_batch,
                    global_step: update + 1,
                    loss_scale: scale,
                };
                on_update(&model, optimizer, &record, next)?;
                records.push(record);
                update += 1;
            }
        }
    }
    Ok((model, records))
}

/// Mean of each named term over a window (terms keyed by their first appearance).
fn mean_terms(window: &[(f64, Vec<(String, f64)>)]) -> Vec<(String, f64)> {
    let mut sums: Vec<(String, f64, usize)> = Vec::new();
    for (_, terms) in window {
        for (name, value) in terms {
            match sums.iter_mut().find(|(n, _, _)| n == name) {
                Some(entry) => {
                    entry.1 += value;
                    entry.2 += 1;
                }
                None => sums.push((name.clone(), *value, 1)),
            }
        }
    }
    sums.into_iter()
        .map(|(n, s, c)| (n, s / c as f64))
        .collect()
}
