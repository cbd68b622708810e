//! Drivers shared by the `codi_train` / `codi_eval` examples and the CPU experiment: build or load
//! the model, read and preprocess data, train on `latent_core::train::train` with logs, resumable
//! checkpoints and Ctrl-C handling, save the final model, evaluate.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use latent_core::train::{
    load_checkpoint, total_updates, train_data_parallel, AdamWSettings, CheckpointPolicy,
    DataParallel, GroupedOptimizer, LoopConfig, ParamGroupConfig, Position, RunLog, Shard,
    StopFlag, TrainStep, TrainingState,
};
use latent_core::{CausalLm, ModelConfig, Pretrained};
use latent_datasets::batch::shuffled_indices;
use latent_datasets::{LineFormat, ReadOptions};
use serde::Serialize;
use tokenizers::Tokenizer;

use crate::batch::{collate, CodiBatch};
use crate::config::{resolve_data_path, CodiRunConfig, DataFormat, EmbeddingTraining};
use crate::data::{prepare, PrepConfig, PrepReport, Problem, Tokenized};
use crate::eval::{evaluate, EvalConfig, EvalSummary};
use crate::model::{
    count_parameters, CodiMeta, CodiModel, ParamCounts, CODI_FORMAT, CODI_FORMAT_VERSION,
};
use crate::projection::ProjectionConfig;
use crate::step::CodiStep;
use crate::tokens::SpecialTokens;
use crate::{CodiError, Result, Task};

/// Name of the saved final model inside a run's output directory.
pub const FINAL_MODEL: &str = "final_model";

/// Reads problems from `path` in `format` (malformed lines are errors), at most `limit`.
pub fn load_problems(
    path: &Path,
    format: DataFormat,
    limit: Option<usize>,
) -> Result<Vec<Problem>> {
    let path = resolve_data_path(path);
    let mut problems: Vec<Problem> = match format {
        DataFormat::Icot => latent_datasets::icot::load(&path, ReadOptions::strict())?
            .records
            .iter()
            .map(Problem::from)
            .collect(),
        DataFormat::IcotNl => {
            let text = std::fs::read_to_string(&path).map_err(|e| CodiError::io(&path, e))?;
            latent_datasets::icot::Icot::nl()
                .load_str(path.display().to_string(), &text, ReadOptions::strict())?
                .records
                .iter()
                .map(Problem::from)
                .collect()
        }
        DataFormat::IcotHf | DataFormat::IcotNlHf => {
            let mut hf = latent_datasets::icot::IcotHf {
                style: if format == DataFormat::IcotNlHf {
                    latent_datasets::icot::CotStyle::Sentences
                } else {
                    latent_datasets::icot::CotStyle::Equations
                },
            };
            let loaded = if path.extension().is_some_and(|e| e == "parquet") {
                latent_datasets::hub::load_parquet(&path, &mut hf, ReadOptions::strict())?
            } else {
                latent_datasets::jsonl::Jsonl(hf).load(&path, ReadOptions::strict())?
            };
            loaded.records.iter().map(Problem::from).collect()
        }
        DataFormat::Gsm8k => latent_datasets::gsm8k::load(&path, ReadOptions::strict())?
            .records
            .iter()
            .map(Problem::from)
            .collect(),
    };
    if let Some(limit) = limit {
        problems.truncate(limit);
    }
    Ok(problems)
}

/// How a model saved with `meta` reads its questions and answers (its answer prefix and BOS
/// setting), with the other preprocessing settings at their defaults.
pub fn model_prep_config(meta: &CodiMeta, lm: &ModelConfig) -> PrepConfig {
    PrepConfig {
        answer_prefix: meta.answer_prefix.clone(),
        bos: if meta.add_bos { lm.bos_token_id } else { None },
        ..PrepConfig::default()
    }
}

/// The training set of `config` (`data.train` in `data.train_format`, at most
/// `data.max_train_samples`) preprocessed for `built`'s model and tokenizer, with what
/// preprocessing kept; an error naming `data.train` when it is not set.
pub fn training_examples<B: Backend>(
    config: &CodiRunConfig,
    built: &Built<B>,
) -> Result<(Vec<Tokenized>, PrepReport)> {
    let d = &config.data;
    let path = d.train.as_ref().ok_or_else(|| CodiError::Config {
        path: PathBuf::from("<run config>"),
        key: "data.train".into(),
        reason: "is not set".into(),
    })?;
    let problems = load_problems(path, d.train_format, d.max_train_samples)?;
    let prep = prep_config(config, &built.meta, built.model.lm.config());
    prepare(&problems, &built.tokenizer, &prep)
}

/// The preprocessing settings of a run.
pub fn prep_config(config: &CodiRunConfig, meta: &CodiMeta, lm: &ModelConfig) -> PrepConfig {
    PrepConfig {
        keep_last_step: config.data.keep_last_step,
        max_token_num: config.data.max_token_num,
        step_separator: if matches!(
            config.data.train_format,
            DataFormat::IcotNl | DataFormat::IcotNlHf
        ) {
            ". ".into()
        } else {
            " ".into()
        },
        ..model_prep_config(meta, lm)
    }
}

/// A model ready to train or evaluate, with its tokenizer and metadata.
#[derive(Debug)]
pub struct Built<B: Backend> {
    /// The model.
    pub model: CodiModel<B>,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// What `codi.json` will say.
    pub meta: CodiMeta,
}

/// Builds the model a config describes: restored from `method.restore_from`, loaded from
/// `model.name_or_path`, or randomly initialised from `model.config` (seeded by `training.seed`).
/// A tokenizer is required (`model.tokenizer` or the model's own).
pub fn build<B: Backend>(config: &CodiRunConfig, device: &B::Device) -> Result<Built<B>> {
    let (model, tokenizer, meta) = build_model(config, device)?;
    let tokenizer = tokenizer.ok_or_else(|| no_tokenizer(Path::new(&meta.base_model)))?;
    Ok(Built {
        model,
        tokenizer,
        meta,
    })
}

/// As [`build`], with the tokenizer optional (e.g. to count parameters).
pub fn build_model<B: Backend>(
    config: &CodiRunConfig,
    device: &B::Device,
) -> Result<(CodiModel<B>, Option<Tokenizer>, CodiMeta)> {
    let dtype = latent_core::parse_dtype(&config.model.dtype)?;
    // Seeded initial weights, reproducible even when models are built on concurrent threads.
    let _rng = latent_core::seed_backend::<B>(device, config.training.seed);
    let override_tokenizer = config
        .model
        .tokenizer
        .as_ref()
        .map(latent_core::hf::tokenizer::load_tokenizer)
        .transpose()?;
    if let Some(dir) = &config.method.restore_from {
        let (model, tokenizer, mut meta) = load_model_dir::<B>(dir, config, device, dtype)?;
        check_restored_projection(config, meta.projection.as_ref(), dir)?;
        meta.task = config.method.task;
        return Ok((model, override_tokenizer.or(tokenizer), meta));
    }
    let (lm, tokenizer, source) = match (&config.model.name_or_path, &config.model.config) {
        (Some(spec), _) => {
            let p = Pretrained::<B>::load(spec, device, dtype)?;
            (p.model, p.tokenizer, spec.clone())
        }
        (None, Some(path)) => {
            let lm_config = ModelConfig::from_file(path)?;
            let lm = CausalLm::<B>::new(&lm_config, device).cast_params(dtype);
            (lm, None, format!("random init from {}", path.display()))
        }
        (None, None) => {
            return Err(CodiError::Config {
                path: PathBuf::from("<config>"),
                key: "model.name_or_path".into(),
                reason: "no model source".into(),
            })
        }
    };
    let eos = match config.model.eos_token_id {
        Some(id) => id,
        None => *lm
            .config()
            .eos_token_ids
            .first()
            .ok_or_else(|| CodiError::Config {
                path: PathBuf::from(&source),
                key: "model.eos_token_id".into(),
                reason: "the model config has no eos_token_id; set one".into(),
            })?,
    };
    let tokens = SpecialTokens::assign(lm.config().vocab_size, config.model.pad_token_id, eos);
    let hidden = lm.config().hidden_size;
    let projection = config
        .method
        .use_prj
        .unwrap_or(true)
        .then(|| ProjectionConfig {
            hidden,
            dim: config.method.prj_dim.unwrap_or(hidden),
            layer_norm: !config.method.prj_no_ln.unwrap_or(false),
            dropout: config.method.prj_dropout,
        });
    let model = CodiModel::from_base_with(
        lm,
        tokens,
        projection.as_ref(),
        config.method.new_token_init,
    )?;
    let meta = CodiMeta {
        format: CODI_FORMAT.into(),
        version: CODI_FORMAT_VERSION,
        task: config.method.task,
        tokens,
        num_latent: config.method.num_latent,
        projection,
        add_bos: config.model.add_bos,
        answer_prefix: config.method.answer_prefix.clone(),
        base_model: source,
    };
    Ok((model, override_tokenizer.or(tokenizer), meta))
}

/// Loads a model directory: one saved by this crate (with `codi.json`), or a checkpoint directory
/// of the reference implementation (see [`crate::reference`]; what it does not record comes from
/// `config`).
pub fn load_model_dir<B: Backend>(
    dir: &Path,
    config: &CodiRunConfig,
    device: &B::Device,
    dtype: burn::tensor::DType,
) -> Result<(CodiModel<B>, Option<Tokenizer>, CodiMeta)> {
    if crate::reference::is_reference_dir(dir) {
        crate::reference::load_reference_for_run::<B>(dir, config, device, dtype)
    } else {
        CodiModel::<B>::load(dir, device, dtype)
    }
}

/// With `method.restore_from`, the projection settings the config sets explicitly must describe
/// the restored model's projection (unset ones take the restored model's values).
fn check_restored_projection(
    config: &CodiRunConfig,
    restored: Option<&ProjectionConfig>,
    dir: &Path,
) -> Result<()> {
    let m = &config.method;
    let has = match restored {
        Some(p) => format!(
            "a projection with prj_dim {}{}",
            p.dim,
            if p.layer_norm {
                ""
            } else {
                " and no LayerNorm"
            }
        ),
        None => "no projection".into(),
    };
    let mismatch = |key: &str, set: String| {
        CodiError::Config {
        path: PathBuf::from("<config>"),
        key: format!("method.{key}"),
        reason: format!(
            "{set}, but the restored model {} has {has}; remove the key to keep the restored projection",
            dir.display()
        ),
    }
    };
    if let Some(use_prj) = m.use_prj {
        if use_prj != restored.is_some() {
            return Err(mismatch("use_prj", format!("use_prj is {use_prj}")));
        }
    }
    if let Some(dim) = m.prj_dim {
        if restored.map(|p| p.dim) != Some(dim) {
            return Err(mismatch("prj_dim", format!("prj_dim is {dim}")));
        }
    }
    if let (Some(no_ln), Some(p)) = (m.prj_no_ln, restored) {
        if no_ln == p.layer_norm {
            return Err(mismatch("prj_no_ln", format!("prj_no_ln is {no_ln}")));
        }
    }
    Ok(())
}

fn no_tokenizer(source: &Path) -> CodiError {
    CodiError::Checkpoint {
        path: source.to_path_buf(),
        reason: "no tokenizer.json found; set model.tokenizer".into(),
    }
}

/// Sets which parameters train: LoRA adapters (freezing the base) when configured, the
/// projection always, embeddings per `method.embeddings`.
pub fn make_trainable<B: AutodiffBackend>(
    model: CodiModel<B>,
    config: &CodiRunConfig,
) -> Result<CodiModel<B>> {
    let mut model = model;
    if let Some(lora) = &config.lora {
        model.lm = model.lm.with_lora(&lora.to_config())?;
    }
    let train_embeddings = config.method.embeddings != EmbeddingTraining::Frozen;
    model.lm.embed_tokens.weight = model
        .lm
        .embed_tokens
        .weight
        .set_require_grad(train_embeddings);
    Ok(model)
}

/// Parameter counts of a model prepared for training.
pub fn parameter_counts<B: AutodiffBackend>(model: &CodiModel<B>) -> (ParamCounts, ParamCounts) {
    (count_parameters(model), count_parameters(&model.prj))
}

/// Settings of one training call that are not in the config file.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Resume from the newest checkpoint in `output_dir` if there is one.
    pub resume: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// Stop (after saving a checkpoint) when this is raised.
    pub stop: Option<StopFlag>,
}

/// What a training call did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// Task trained.
    pub task: Task,
    /// Training examples.
    pub examples: usize,
    /// Updates done by this call.
    pub updates: usize,
    /// Wall time of the loop.
    pub seconds: f64,
    /// Mean loss of the last epoch's updates.
    pub final_loss: f64,
    /// Parameters.
    pub parameters: ParamCounts,
    /// Where the final model was saved.
    pub saved: PathBuf,
}

/// Real tokens a micro-batch processes (teacher + student passes).
fn batch_tokens(batch: &CodiBatch, task: Task) -> usize {
    let ones = |g: &crate::batch::Grid| g.data.iter().filter(|&&v| v != 0).count();
    let teacher = ones(&batch.teacher.mask);
    match task {
        Task::Codi => teacher + ones(&batch.question.1) + ones(&batch.decoder.mask),
        _ => teacher,
    }
}

/// Trains `built.model` on `examples` as `config` says, saves the final model in
/// `output_dir/final_model` and returns it with a report.
pub fn train<B: AutodiffBackend>(
    config: &CodiRunConfig,
    built: Built<B>,
    examples: &[Tokenized],
    options: &TrainOptions,
) -> Result<(CodiModel<B>, TrainReport)> {
    let device = built.model.lm.device();
    train_on(config, built, examples, options, &[device])
}

/// [`train`] with one replica per device (`codi_train --devices cpu,cpu` or `cuda:0,cuda:1`):
/// each micro-batch holds `per_device_batch_size` examples per replica and is split across them
/// (`latent_core::train::data_parallel`); each replica computes the loss of its rows, and the
/// replicas' gradients are averaged before the clip and the update, so an update still covers
/// `effective_batch_size` examples ([`micro_batching`]); the first replica logs and saves.
///
/// As with PyTorch's DistributedDataParallel, a replica's loss is the mean over its own rows
/// (its tokens for the CE terms, its rows' teacher states for the distillation scale), so a run on
/// `n` devices equals a one-device run with `n` times the accumulation, not one with `n` times
/// the micro-batch in one pass. `built.model` must be on `devices[0]`; the returned model is
/// there too.
pub fn train_on<B: AutodiffBackend>(
    config: &CodiRunConfig,
    built: Built<B>,
    examples: &[Tokenized],
    options: &TrainOptions,
    devices: &[B::Device],
) -> Result<(CodiModel<B>, TrainReport)> {
    let task = config.method.task;
    let tokens = built.meta.tokens;
    let new_rows_only = config.method.embeddings == EmbeddingTraining::NewTokens;
    let step = CodiStep {
        task,
        loss: config.loss(),
        train_rows_from: new_rows_only.then_some(tokens.base_vocab),
    };
    let with_cot = task != Task::NoCotSft;
    let (per_batch, _) = micro_batching(config, devices.len())?;
    let seed = config.training.seed;
    let batches = move |epoch: usize| {
        epoch_batches(examples.len(), per_batch, seed, epoch, |idx| {
            let items: Vec<&Tokenized> = idx.iter().map(|&i| &examples[i]).collect();
            collate(&items, &tokens, with_cot)
        })
    };
    train_with(
        config,
        built,
        examples.len(),
        step,
        batches,
        move |b| batch_tokens(b, task),
        options,
        devices,
    )
}

/// The batches of `epoch`: [`epoch_order`] cut into chunks of `per_batch` example indices, each
/// turned into a batch by `collate`.
pub fn epoch_batches<T>(
    n: usize,
    per_batch: usize,
    seed: u64,
    epoch: usize,
    collate: impl FnMut(&[usize]) -> T,
) -> Vec<T> {
    epoch_order(n, seed, epoch)
        .chunks(per_batch)
        .map(collate)
        .collect()
}

/// The optimizer of a CODI run over `total` updates: one group for the model (the config's lr,
/// weight decay and schedule; no decay on biases and norms) and, with `embeddings: new_tokens`, a
/// first group for the embedding rows without weight decay (so the base rows, whose gradient is
/// zeroed, stay exactly as they are).
pub fn codi_optimizer<B: AutodiffBackend>(
    model: &CodiModel<B>,
    config: &CodiRunConfig,
    total: usize,
) -> Result<GroupedOptimizer<B, CodiModel<B>>> {
    let t = &config.training;
    let mut groups = vec![ParamGroupConfig {
        name: "model".into(),
        prefixes: vec![],
        lr: t.learning_rate,
        weight_decay: t.weight_decay,
        schedule: t.schedule,
        warmup_ratio: t.warmup_ratio,
    }];
    if config.method.embeddings == EmbeddingTraining::NewTokens {
        groups.insert(
            0,
            ParamGroupConfig {
                name: "new_token_embeddings".into(),
                prefixes: vec!["lm.embed_tokens".into()],
                weight_decay: 0.0,
                ..groups[0].clone()
            },
        );
    }
    let adamw = AdamWSettings {
        no_decay_bias_and_norm: true,
        ..AdamWSettings::default()
    };
    Ok(GroupedOptimizer::new(model, &groups, &adamw, total)?)
}

/// The example order of `epoch`: a shuffle seeded by `seed` and the epoch.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    shuffled_indices(n, seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Examples per micro-batch and micro-batches per update of a run on `replicas` devices:
/// `per_device_batch_size` examples on each replica, so a micro-batch holds `replicas` times as
/// many and `effective_batch_size` (the examples of one update, whatever the device count) is
/// reached with `effective_batch_size / (per_device_batch_size × replicas)` micro-batches; an error
/// naming the key when it is not a multiple.
pub fn micro_batching(config: &CodiRunConfig, replicas: usize) -> Result<(usize, usize)> {
    let t = &config.training;
    let micro = t.per_device_batch_size * replicas.max(1);
    if micro == 0 || !t.effective_batch_size.is_multiple_of(micro) {
        return Err(CodiError::Config {
            path: PathBuf::from("<run config>"),
            key: "training.effective_batch_size".into(),
            reason: format!(
                "{} is not a multiple of per_device_batch_size {} x {} devices",
                t.effective_batch_size,
                t.per_device_batch_size,
                replicas.max(1)
            ),
        });
    }
    Ok((micro, t.effective_batch_size / micro))
}

/// The training driver behind [`train_on`], for any [`TrainStep`] on a CODI model:
/// `batches(epoch)` gives an epoch's micro-batches of `examples` examples (`tokens` counts the real
/// tokens of one, for the throughput log). Sets the trainable parameters, runs the shared loop
/// (`latent_core::train::train_data_parallel`: one replica per entry of `devices`, each a clone of
/// `step` on its [`Shard`] of every micro-batch) with the config's optimizer, schedule, logs and
/// checkpoints, and saves `output_dir/final_model` with `codi.json` saying `method.task`.
#[allow(clippy::too_many_arguments)]
pub fn train_with<B, S>(
    config: &CodiRunConfig,
    built: Built<B>,
    examples: usize,
    step: S,
    batches: impl Fn(usize) -> Vec<S::Batch> + Sync,
    tokens: impl Fn(&S::Batch) -> usize + Sync,
    options: &TrainOptions,
    devices: &[B::Device],
) -> Result<(CodiModel<B>, TrainReport)>
where
    B: AutodiffBackend,
    S: TrainStep<B, CodiModel<B>> + Clone + Sync,
    S::Batch: Shard<B>,
{
    if examples == 0 {
        return Err(CodiError::Empty("the training set".into()));
    }
    let Built {
        model,
        tokenizer,
        meta,
    } = built;
    let t = &config.training;
    let task = config.method.task;
    let model = make_trainable(model, config)?;
    let parameters = count_parameters(&model);
    let (per_batch, accumulation) = micro_batching(config, devices.len())?;
    let batches_per_epoch = examples.div_ceil(per_batch);
    let total = total_updates(t.epochs, batches_per_epoch, accumulation);
    let mut optimizer = codi_optimizer(&model, config, total)?;
    let policy = CheckpointPolicy {
        dir: t.output_dir.clone(),
        every_updates: t.save_every_updates,
        keep_last: t.keep_last,
        per_epoch: t.save_every_updates == 0,
    };
    let config_json = serde_json::to_value(config).expect("config serialises");
    let (mut model, start, resumed) = match (options.resume, policy.latest()?) {
        (true, Some(dir)) => {
            let (model, state) = load_checkpoint(&dir, model, &mut optimizer)?;
            (model, state.position, Some(dir))
        }
        _ => (model, Position::default(), None),
    };
    let mut log = RunLog::open(&t.output_dir, total, start.global_step, options.progress)?;
    log.describe_loss(
        task.label(),
        match task {
            Task::Codi => "loss (cross-entropy in nats + distillation)",
            Task::CotSft | Task::NoCotSft => "cross-entropy (nats per token)",
        },
    );
    if let Some(dir) = resumed {
        log.note(&format!("resuming from {} at {:?}", dir.display(), start))?;
    }
    log.note(&format!(
        "{} on {} examples: {} parameters, {} trainable; {} updates of {} examples",
        task.label(),
        examples,
        parameters.total,
        parameters.trainable,
        total,
        t.effective_batch_size
    ))?;
    // Real tokens of each micro-batch of the current epoch (every replica writes the same).
    let tokens_per_batch: Arc<Mutex<Vec<usize>>> = Arc::default();
    let data = {
        let tokens_per_batch = Arc::clone(&tokens_per_batch);
        move |epoch: usize| {
            let epoch_batches = batches(epoch);
            let counts = epoch_batches.iter().map(&tokens).collect();
            *tokens_per_batch.lock().unwrap_or_else(|e| e.into_inner()) = counts;
            epoch_batches
        }
    };
    if devices.len() > 1 {
        log.note(&format!(
            "data parallel: {} replicas of {} examples each per micro-batch of {}, accumulation {}",
            devices.len(),
            t.per_device_batch_size,
            per_batch,
            accumulation
        ))?;
    }
    let loop_config = LoopConfig {
        epochs: t.epochs,
        accumulation,
        max_grad_norm: t.max_grad_norm,
        start,
        precision: t.precision,
        seed: t.seed,
    };
    let started = Instant::now();
    let mut last_losses: Vec<(usize, f64)> = Vec::new();
    let parallel = DataParallel::local(devices.to_vec());
    let (trained, records) = train_data_parallel(
        &parallel,
        model,
        |_replica| step.clone(),
        data,
        &mut optimizer,
        &loop_config,
        |model, optimizer, record, position| {
            let counts = tokens_per_batch.lock().unwrap_or_else(|e| e.into_inner());
            let end = if position.next_batch == 0 {
                counts.len()
            } else {
                position.next_batch
            };
            let tokens: usize = counts[end.saturating_sub(record.micro_batches)..end]
                .iter()
                .sum();
            log.update(record, tokens)?;
            last_losses.push((record.epoch, record.loss));
            let state = TrainingState {
                position,
                best: None,
                extra: serde_json::Value::Null,
            };
            policy.after_update(
                model,
                optimizer,
                &state,
                &config_json,
                options.stop.as_ref(),
            )
        },
    )?;
    model = trained;
    let seconds = started.elapsed().as_secs_f64();
    log.finish(None)?;
    let last_epoch = last_losses.last().map(|(e, _)| *e);
    let tail: Vec<f64> = last_losses
        .iter()
        .filter(|(e, _)| Some(*e) == last_epoch)
        .map(|(_, l)| *l)
        .collect();
    let final_loss = tail.iter().sum::<f64>() / tail.len().max(1) as f64;
    let saved = t.output_dir.join(FINAL_MODEL);
    let mut meta = meta;
    meta.task = task;
    model.save(&saved, Some(&tokenizer), &meta)?;
    Ok((
        model,
        TrainReport {
            task,
            examples,
            updates: records.len(),
            seconds,
            final_loss,
            parameters,
            saved,
        },
    ))
}

/// A saved model loaded for evaluation, with `problems` preprocessed for it.
#[derive(Debug)]
pub struct Loaded<B: Backend> {
    /// The model.
    pub model: CodiModel<B>,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// Its `codi.json`.
    pub meta: CodiMeta,
    /// The preprocessed problems.
    pub examples: Vec<Tokenized>,
    /// What preprocessing kept.
    pub report: PrepReport,
}

/// Loads a saved model directory (one saved by this crate, or a reference checkpoint directory:
/// [`load_model_dir`], with `config` supplying what the latter does not record) and preprocesses
/// `problems` for it.
pub fn load_saved<B: Backend>(
    config: &CodiRunConfig,
    dir: &Path,
    problems: &[Problem],
    prep: impl FnOnce(&CodiMeta, &ModelConfig) -> PrepConfig,
    device: &B::Device,
) -> Result<Loaded<B>> {
    let loaded = load_model_dir::<B>(dir, config, device, burn::tensor::DType::F32)?;
    prepare_loaded(loaded, dir, problems, prep)
}

fn prepare_loaded<B: Backend>(
    (model, tokenizer, meta): (CodiModel<B>, Option<Tokenizer>, CodiMeta),
    dir: &Path,
    problems: &[Problem],
    prep: impl FnOnce(&CodiMeta, &ModelConfig) -> PrepConfig,
) -> Result<Loaded<B>> {
    let tokenizer = tokenizer.ok_or_else(|| no_tokenizer(dir))?;
    let prep = prep(&meta, model.lm.config());
    let (examples, report) = prepare(problems, &tokenizer, &prep)?;
    Ok(Loaded {
        model,
        tokenizer,
        meta,
        examples,
        report,
    })
}

/// Evaluates a saved model directory on `problems`: one saved by this crate or a reference
/// checkpoint directory (see [`load_saved`]).
pub fn evaluate_saved<B: Backend>(
    config: &CodiRunConfig,
    dir: &Path,
    problems: &[Problem],
    prep: impl FnOnce(&CodiMeta, &ModelConfig) -> PrepConfig,
    eval: &EvalConfig,
    device: &B::Device,
    progress: impl FnMut(usize),
) -> Result<(EvalSummary, PrepReport)> {
    let loaded = load_saved::<B>(config, dir, problems, prep, device)?;
    evaluate_loaded(&loaded, eval, progress)
}

fn evaluate_loaded<B: Backend>(
    loaded: &Loaded<B>,
    eval: &EvalConfig,
    progress: impl FnMut(usize),
) -> Result<(EvalSummary, PrepReport)> {
    let eval = EvalConfig {
        num_latent: loaded.meta.num_latent,
        ..eval.clone()
    };
    let summary = evaluate(
        &loaded.model,
        loaded.meta.task,
        &loaded.tokenizer,
        &loaded.examples,
        &eval,
        progress,
    )?;
    Ok((summary, loaded.report))
}

#[cfg(test)]
mod tests {
    use latent_core::CpuBackend;

    use super::*;
    use crate::hybrid::testing::{tiny_meta, tiny_projection, tiny_setup};

    fn restoring(dir: &Path, method: serde_json::Value) -> CodiRunConfig {
        let mut m = method;
        m["restore_from"] = serde_json::json!(dir);
        serde_json::from_value(serde_json::json!({
            "model": {},
            "method": m,
            "data": {},
            "training": {
                "output_dir": dir.join("unused"),
                "epochs": 1,
                "per_device_batch_size": 1,
                "effective_batch_size": 1,
                "learning_rate": 1e-3
            }
        }))
        .unwrap()
    }

    #[test]
    fn restore_refuses_projection_settings_the_checkpoint_does_not_have() {
        let dir = std::env::temp_dir().join(format!("codi-restore-prj-{}", std::process::id()));
        let (model, tokenizer, _) = tiny_setup();
        let meta = tiny_meta(&model, 2);
        model.save(&dir, Some(&tokenizer), &meta).unwrap();
        let device = Default::default();
        let build = |method| build_model::<CpuBackend>(&restoring(&dir, method), &device);
        // Unset keys take the restored projection; set keys that agree are fine.
        let ok = [
            serde_json::json!({}),
            serde_json::json!({"use_prj": true, "prj_dim": 32, "prj_no_ln": false}),
        ];
        for method in ok {
            let (_, _, restored) = build(method).unwrap();
            assert_eq!(restored.projection, Some(tiny_projection()));
        }
        for (method, key) in [
            (serde_json::json!({"prj_dim": 16}), "method.prj_dim"),
            (serde_json::json!({"use_prj": false}), "method.use_prj"),
            (serde_json::json!({"prj_no_ln": true}), "method.prj_no_ln"),
        ] {
            match build(method) {
                Err(CodiError::Config {
                    key: found, reason, ..
                }) => {
                    assert_eq!(found, key);
                    assert!(
                        reason.contains(&dir.display().to_string()) && reason.contains("32"),
                        "{reason}"
                    );
                }
                other => panic!("{key}: expected a config error, got {other:?}"),
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn reads_gsm8k_aug_in_its_hugging_face_form() {
        let sample = latent_datasets::data_dir::sample;
        let hf = load_problems(
            &sample("gsm8k-aug/hf_sample.jsonl"),
            DataFormat::IcotHf,
            None,
        )
        .unwrap();
        let lines =
            load_problems(&sample("gsm8k-aug/test_sample.txt"), DataFormat::Icot, None).unwrap();
        assert_eq!(hf.len(), 10);
        assert_eq!(hf, lines[..10]);
        assert!(hf[0].steps.len() > 1);
        // The icot reader refuses the JSON form (and the other way round): formats are not guessed.
        assert!(
            load_problems(&sample("gsm8k-aug/hf_sample.jsonl"), DataFormat::Icot, None).is_err()
        );
        assert!(load_problems(
            &sample("gsm8k-aug/test_sample.txt"),
            DataFormat::IcotHf,
            None
        )
        .is_err());
    }
}
