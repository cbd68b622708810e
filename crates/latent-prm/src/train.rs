//! `prm_train`: the scorer trained on the shared loop with design 003's recipe (AdamW, one cosine
//! schedule with warm-up, accumulation, global-norm clip), checkpoints `checkpoint-N/`,
//! `epoch_K/`, `best/` (lowest held-out loss, or lowest epoch training loss without a held-out
//! set) and `final/`, each with weights, optimizer and scheduler state, `training_state.json` and
//! `config.json`; resume from any of them; `training.log`, `metrics.jsonl`, `training_stats.json`
//! and a progress bar with loss and lr.

use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use latent_codi::CodiModel;
use latent_core::train::{
    check_stop, load_checkpoint, total_updates, train_data_parallel, AdamWSettings, BestMetric,
    CheckpointPolicy, DataParallel, Direction, GroupedOptimizer, LoopConfig, ParamGroupConfig,
    Position, RunLog, ScheduleKind, StepIndex, StepLoss, StopFlag, TrainStep, TrainingState,
};
use latent_core::{parse_dtype, seed_backend, CausalLm, Pretrained};
use serde::Serialize;

use crate::batch::{batches_per_epoch, epoch_batches, input_of, labels_of, MicroBatch};
use crate::config::PrmRunConfig;
use crate::loss::{prm_loss, LossKind};
use crate::model::{extra_parameters, LatentRewardModel};
use crate::paths::PathSet;
use crate::{PrmError, Result};

/// The backbone `config` starts from: a CODI checkpoint's LM, a Hugging Face model, or a random
/// model of `model.config`.
pub fn load_backbone<B: Backend>(config: &PrmRunConfig, device: &B::Device) -> Result<CausalLm<B>> {
    let dtype = parse_dtype(&config.model.dtype)?;
    match &config.model.backbone {
        Some(spec) if Path::new(spec).join("codi.json").exists() => {
            Ok(CodiModel::<B>::load(Path::new(spec), device, dtype)?.0.lm)
        }
        Some(spec) => Ok(Pretrained::<B>::load(spec, device, dtype)?.model),
        None => Ok(CausalLm::new(&config.backbone_config()?, device)),
    }
}

/// A fresh scorer for `config` (its `model.latent_dim` must be set), initialised from the
/// backend RNG seeded with the run's seed.
pub fn build_model<B: Backend>(
    config: &PrmRunConfig,
    device: &B::Device,
) -> Result<LatentRewardModel<B>> {
    let backbone = load_backbone(config, device)?;
    let _rng = seed_backend::<B>(device, config.training.seed);
    // Burn initialises parameters lazily, at first use: draw them now, under the seed (forking
    // initialises each one and keeps it a trainable leaf), so every copy of the model (a
    // data-parallel replica) holds these values.
    Ok(scorer_on(backbone, config, Path::new("<config>"))?.fork(device))
}

/// The scorer `config` describes over `backbone` (`config_path` names the config in errors).
fn scorer_on<B: Backend>(
    backbone: CausalLm<B>,
    config: &PrmRunConfig,
    config_path: &Path,
) -> Result<LatentRewardModel<B>> {
    let latent_dim = config.model.latent_dim.ok_or_else(|| PrmError::Config {
        path: config_path.into(),
        key: "model.latent_dim".into(),
        reason: "unset (training sets it to the collection's width)".into(),
    })?;
    Ok(LatentRewardModel::new(
        backbone,
        latent_dim,
        config.model.pooling,
        config.model.head,
        config.model.dropout,
    ))
}

/// A trained scorer from a checkpoint directory of a run (`final/`, `best/`, `checkpoint-N/`):
/// rebuilt from its `config.json` (a random backbone of the right shape), weights from
/// `model.safetensors`. Returns it with its run config.
pub fn load_scorer<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(LatentRewardModel<B>, PrmRunConfig)> {
    let config_path = dir.join("config.json");
    let config: PrmRunConfig = latent_core::config_file::read_config(&config_path)?;
    let backbone = CausalLm::new(&config.backbone_config()?, device);
    let model = scorer_on(backbone, &config, &config_path)?;
    let weights = latent_core::hf::safetensors::Checkpoint::open(&[dir.join("model.safetensors")])?;
    let model = latent_core::train::state_dict::load_module_tensors(model, &weights)?;
    Ok((model, config))
}

/// An error of this crate inside the shared loop's callbacks.
fn to_core(e: PrmError) -> latent_core::CoreError {
    match e {
        PrmError::Core(c) => c,
        other => latent_core::CoreError::Method(Box::new(other)),
    }
}

/// The loss of a micro-batch.
struct PrmStep<'a> {
    set: &'a PathSet,
    kind: LossKind,
    step_labels: bool,
    max_seq_len: usize,
}

impl<B: AutodiffBackend> TrainStep<B, LatentRewardModel<B>> for PrmStep<'_> {
    type Batch = MicroBatch;

    fn loss(
        &mut self,
        model: &LatentRewardModel<B>,
        batch: &MicroBatch,
        _at: StepIndex,
    ) -> latent_core::Result<StepLoss<B>> {
        let device = model.head.weight.val().device();
        let input = input_of::<B>(self.set, &batch.paths, self.max_seq_len, &device);
        // Dropout masks come from the stream the shared loop seeds for this micro-batch (run seed,
        // update, epoch, micro-batch), so a resumed run draws the same ones.
        let values = model.forward(input).map_err(to_core)?;
        let k = values.dims()[1];
        let labels = labels_of::<B>(self.set, &batch.paths, k, self.step_labels, &device);
        let loss = prm_loss(self.kind, values, labels, &batch.groups);
        Ok(StepLoss {
            loss,
            terms: Vec::new(),
        })
    }
}

/// Mean loss of `model` (evaluation mode) on every path of `set`; ends with
/// `CoreError::StopRequested` between batches once `stop` is raised.
pub fn evaluate_loss<B: Backend>(
    model: &LatentRewardModel<B>,
    set: &PathSet,
    config: &PrmRunConfig,
    stop: Option<&StopFlag>,
) -> Result<f64> {
    let device = model.head.weight.val().device();
    let questions: Vec<usize> = (0..set.questions.len()).collect();
    let batches = epoch_batches(set, &questions, 64, config.loss.needs_groups(), 0, 0);
    let (mut sum, mut weight) = (0.0, 0.0);
    for batch in &batches {
        check_stop(stop, "the held-out loss")?;
        let values = model.forward(input_of::<B>(
            set,
            &batch.paths,
            config.data.max_seq_len,
            &device,
        ))?;
        let k = values.dims()[1];
        let labels = labels_of::<B>(set, &batch.paths, k, config.data.step_labels, &device);
        let loss: f64 = prm_loss(config.loss, values, labels, &batch.groups)
            .into_scalar()
            .elem();
        let w = if config.loss.needs_groups() {
            batch.groups.len()
        } else {
            batch.paths.len()
        } as f64;
        sum += loss * w;
        weight += w;
    }
    Ok(sum / weight.max(1.0))
}

/// Options of one training call.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Resume from this checkpoint directory.
    pub resume: Option<PathBuf>,
    /// Show a progress bar.
    pub progress: bool,
    /// Stop when requested: after the current update, or within one batch of the held-out
    /// evaluation (the checkpoint then marks it pending and the resumed run evaluates first).
    pub stop: Option<StopFlag>,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// Updates of this call.
    pub updates: usize,
    /// Mean training loss per epoch (this call's epochs).
    pub epoch_losses: Vec<f64>,
    /// Held-out loss after each epoch, when there is a held-out set.
    pub eval_losses: Vec<f64>,
    /// Wall time (s).
    pub seconds: f64,
    /// The `final/` checkpoint.
    pub saved: PathBuf,
}

/// Trains a scorer with `config` on the collection `config.data.train`.
pub fn train<B: AutodiffBackend>(
    config: &PrmRunConfig,
    options: &TrainOptions,
    device: &B::Device,
) -> Result<(LatentRewardModel<B>, TrainReport)> {
    train_on::<B>(config, options, std::slice::from_ref(device))
}

/// [`train`] with one replica per device (`--devices cpu,cpu`, `cuda:0,cuda:1`): each micro-batch
/// of `training.batch_size` paths (whole questions for the listwise loss) is split across the
/// replicas and their gradients are averaged before the clip and the update
/// (`latent_core::train::data_parallel`); the first replica logs and saves. Returns the first
/// replica's model (on `devices[0]`).
pub fn train_on<B: AutodiffBackend>(
    config: &PrmRunConfig,
    options: &TrainOptions,
    devices: &[B::Device],
) -> Result<(LatentRewardModel<B>, TrainReport)> {
    let device = devices
        .first()
        .ok_or_else(|| PrmError::config("training.device", "no device to train on".to_string()))?;
    let set = PathSet::load(&config.data.train)?;
    let eval_set = config
        .data
        .eval
        .as_ref()
        .map(|d| PathSet::load(d))
        .transpose()?;
    let mut config = config.clone();
    config.model.latent_dim.get_or_insert(set.hidden());
    if config.data.step_labels && set.step_values.is_none() {
        return Err(PrmError::config(
            "data.step_labels",
            format!(
                "{} has no per-step values (collect with sampling.mc_rollouts > 0)",
                config.data.train.display()
            ),
        ));
    }
    let t = &config.training;
    let questions: Vec<usize> = (0..set
        .questions
        .len()
        .min(config.data.max_train_questions.unwrap_or(usize::MAX)))
        .collect();
    let whole = config.loss.needs_groups();
    let per_epoch = batches_per_epoch(&set, &questions, t.batch_size, whole);
    let total = total_updates(t.epochs, per_epoch, t.accumulation);
    let model = build_model::<B>(&config, device)?;
    let groups = [ParamGroupConfig {
        name: "all".into(),
        prefixes: Vec::new(),
        lr: t.learning_rate,
        weight_decay: t.weight_decay,
        schedule: ScheduleKind::Cosine,
        warmup_ratio: t.warmup_ratio,
    }];
    let mut optimizer = GroupedOptimizer::new(&model, &groups, &AdamWSettings::default(), total)?;
    let policy = CheckpointPolicy {
        dir: t.output_dir.clone(),
        every_updates: t.save_every_updates,
        keep_last: t.keep_last,
        per_epoch: true,
    };
    let config_json = serde_json::to_value(&config).expect("config serialises");
    let (model, start, mut best, pending) = match &options.resume {
        Some(dir) => {
            let (model, state) = load_checkpoint(dir, model, &mut optimizer)?;
            (
                model,
                state.position,
                state
                    .best
                    .clone()
                    .unwrap_or_else(|| BestMetric::new("loss", Direction::Minimize)),
                state.evaluation_pending(),
            )
        }
        None => (
            model,
            Position::default(),
            BestMetric::new("loss", Direction::Minimize),
            false,
        ),
    };
    let mut log = RunLog::open(&t.output_dir, total, start.global_step, options.progress)?;
    log.describe_loss(
        "latent reward model",
        match config.loss {
            LossKind::Mse => "loss (squared error to the score)",
            LossKind::Bce => "loss (binary cross-entropy, nats)",
            LossKind::Listwise => "loss (listwise cross-entropy, nats)",
        },
    );
    log.note(&format!(
        "latent reward model: {} training questions x {} paths ({} steps of width {}), loss {:?}, {} updates ({} micro-batches of {} per epoch, accumulation {})",
        questions.len(), set.meta.sampling.paths_per_question, set.steps(), set.hidden(), config.loss, total, per_epoch, t.batch_size, t.accumulation
    ))?;
    let step = |_replica| PrmStep {
        set: &set,
        kind: config.loss,
        step_labels: config.data.step_labels,
        max_seq_len: config.data.max_seq_len,
    };
    let loop_config = LoopConfig {
        epochs: t.epochs,
        accumulation: t.accumulation,
        max_grad_norm: t.max_grad_norm,
        start,
        precision: t.precision,
        seed: t.seed,
    };
    let started = std::time::Instant::now();
    let mut epoch_sum = (0.0, 0usize);
    let mut epoch_losses = Vec::new();
    let mut eval_losses = Vec::new();
    let stop = options.stop.as_ref();
    // The held-out loss after an epoch; a stop during it checkpoints with the evaluation pending.
    let held_out = |model: &LatentRewardModel<B>,
                    optimizer: &GroupedOptimizer<B, LatentRewardModel<B>>,
                    state: &TrainingState,
                    eval: &PathSet| {
        policy.evaluate_or_interrupt(model, optimizer, state, &config_json, || {
            evaluate_loss(&model.valid(), eval, &config, stop).map_err(to_core)
        })
    };
    if let (true, Some(eval)) = (pending, &eval_set) {
        // Stopped during the evaluation due here: evaluate first, then write what was due.
        let mut state = TrainingState {
            position: start,
            best: Some(best.clone()),
            extra: serde_json::Value::Null,
        };
        let loss = held_out(&model, &optimizer, &state, eval)?;
        eval_losses.push(loss);
        log.metrics(start.global_step, &[("valid/loss".to_string(), loss)])?;
        let logged = [("loss".to_string(), loss)];
        policy.after_evaluation(
            &model,
            &optimizer,
            &mut state,
            &config_json,
            &mut best,
            &logged,
        )?;
        policy.after_update(&model, &optimizer, &state, &config_json, stop)?;
    }
    let (model, records) = train_data_parallel(
        &DataParallel::local(devices.to_vec()),
        model,
        step,
        |epoch| epoch_batches(&set, &questions, t.batch_size, whole, t.seed, epoch),
        &mut optimizer,
        &loop_config,
        |model, optimizer, record, position| {
            log.update(record, record.micro_batches)?;
            epoch_sum = (epoch_sum.0 + record.loss, epoch_sum.1 + 1);
            let mut state = TrainingState {
                position,
                best: Some(best.clone()),
                extra: serde_json::Value::Null,
            };
            if position.next_batch == 0 {
                let train_loss = epoch_sum.0 / epoch_sum.1.max(1) as f64;
                epoch_losses.push(train_loss);
                epoch_sum = (0.0, 0);
                let mut logged = vec![("train/epoch_loss".to_string(), train_loss)];
                let key_value = match &eval_set {
                    Some(eval) => {
                        let loss = held_out(model, optimizer, &state, eval)?;
                        eval_losses.push(loss);
                        logged.insert(0, ("valid/loss".to_string(), loss));
                        loss
                    }
                    None => train_loss,
                };
                log.metrics(position.global_step, &logged)?;
                policy.after_evaluation(
                    model,
                    optimizer,
                    &mut state,
                    &config_json,
                    &mut best,
                    &[("loss".to_string(), key_value)],
                )?;
            }
            policy.after_update(model, optimizer, &state, &config_json, stop)
        },
    )?;
    let state = TrainingState {
        position: Position {
            epoch: t.epochs,
            next_batch: 0,
            global_step: start.global_step + records.len(),
            ..Default::default()
        },
        best: Some(best.clone()),
        extra: serde_json::Value::Null,
    };
    policy.save_final(&model, &optimizer, &state, &config_json)?;
    log.finish(Some(&best))?;
    let report = TrainReport {
        updates: records.len(),
        epoch_losses,
        eval_losses,
        seconds: started.elapsed().as_secs_f64(),
        saved: t.output_dir.join("final"),
    };
    Ok((model, report))
}

/// The trainable parameter counts of `config` from `config.json` alone (nothing allocated):
/// `(backbone, head, input projection)`, for `latent_dim`-wide thoughts.
pub fn parameter_counts(config: &PrmRunConfig, latent_dim: usize) -> Result<(usize, usize, usize)> {
    let model = config.backbone_config()?;
    let (head, projection) = extra_parameters(model.hidden_size, latent_dim);
    Ok((model.num_parameters(), head, projection))
}
