//! Training on the shared loop (`latent_core::train`): the diffusion [`TrainStep`], model building
//! (vocabulary from the tokenizer, embedding from the encoder), resume / warm start, validation
//! every epoch (loss, and optionally EM/BLEU on decoded held-out examples), `best`/`final`
//! checkpoints and an inference export.

use std::path::{Path, PathBuf};

use burn::module::{AutodiffModule, Module};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use latent_core::hf::safetensors::{write_safetensors, Checkpoint, SaveDtype};
use latent_core::train::state_dict::{load_module_tensors, module_tensors};
use latent_core::train::{
    load_checkpoint, total_updates, train_data_parallel, AdamWSettings, BestMetric,
    CheckpointPolicy, DataParallel, Direction, GroupedOptimizer, LoopConfig, ParamGroupConfig,
    Position, RunLog, StepLoss, StopFlag, TrainStep, TrainingState,
};
use serde_json::{json, Value};

use crate::config::{RunConfig, Task};
use crate::data::{split_data, Examples};
use crate::decoder::model::POSITIONS_KEY;
use crate::decoder::{pca_embedding, EmbeddingInit, SgddModel};
use crate::diffusion::{corrupt, diffusion_loss, LossKind, SgddBatch};
use crate::encoder::SemanticEncoder;
use crate::eval::{eval_generation, eval_loss, write_samples};
use crate::schedule::MaskSchedule;
use crate::{Result, SgddError};

/// The diffusion loss of a micro-batch.
#[derive(Debug, Clone, Copy)]
pub struct DiffusionStep {
    /// Masking schedule.
    pub schedule: MaskSchedule,
    /// Which loss is minimised.
    pub loss: LossKind,
    /// Guidance dropout probability per row.
    pub cfg_prob: f64,
}

impl<B: AutodiffBackend> TrainStep<B, SgddModel<B>> for DiffusionStep {
    type Batch = SgddBatch;

    fn loss(
        &mut self,
        model: &SgddModel<B>,
        batch: &SgddBatch,
        _at: latent_core::train::StepIndex,
    ) -> latent_core::Result<StepLoss<B>> {
        let c = corrupt(batch, &self.schedule, model.mask_id(), self.cfg_prob);
        let out = diffusion_loss(model, batch, &c, &self.schedule, self.loss);
        Ok(StepLoss {
            loss: out.loss,
            terms: vec![
                ("masked_ce".into(), out.masked_ce),
                ("masked_ce_nonpad".into(), out.masked_ce_nonpad),
                ("bound".into(), out.bound_per_token),
            ],
        })
    }
}

/// Parameter counts of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamCounts {
    /// Frozen encoder.
    pub encoder: usize,
    /// Trainable (decoder, projection, null vector).
    pub trainable: usize,
}

/// Builds the decoder for `encoder`: vocabulary size from its tokenizer, absorbing token from its
/// special tokens, embedding random or mapped from the encoder's ([`pca_embedding`]).
pub fn build_model<B: Backend, E: Backend>(
    config: &RunConfig,
    encoder: &SemanticEncoder<E>,
    init: EmbeddingInit,
    device: &B::Device,
) -> SgddModel<B> {
    let vocab = encoder.tokenizer.get_vocab_size(true);
    // Seeded initial weights (`train.seed`), reproducible across runs and threads.
    let rng = latent_core::seed_backend::<B>(device, config.train.seed);
    let model = SgddModel::new(
        &config.model,
        vocab,
        encoder.width(),
        encoder.special.mask,
        device,
    );
    drop(rng);
    match init {
        EmbeddingInit::Random => model,
        EmbeddingInit::EncoderPca => {
            let w = encoder.model.token_embeddings();
            let [_, e] = w.dims();
            let host: Vec<f32> = w.into_data().convert::<f32>().into_vec().expect("f32");
            let rows = &host[..vocab * e];
            model.with_embedding(pca_embedding(
                rows,
                vocab,
                e,
                config.model.hidden,
                config.model.init_std,
                config.train.seed,
            ))
        }
    }
}

/// Loads a trained model for inference from a checkpoint or export directory (`model.safetensors`
/// keyed by module path + the run's `config.json`), after applying `overrides` (`key.path=value`,
/// as `--set`) to that config: `model.*` overrides change the architecture built, `decode.*` the
/// decoding. Returns the run config, encoder and model.
pub fn load_trained<B: Backend>(
    dir: &Path,
    overrides: &[String],
    device: &B::Device,
) -> Result<(RunConfig, SemanticEncoder<B>, SgddModel<B>)> {
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path)
        .map_err(|e| latent_core::CoreError::io(&config_path, e))?;
    let config: RunConfig = latent_core::config_file::parse_json_config(&text, &config_path)?;
    let config = config.with_overrides(overrides)?;
    config.validate(&config_path.display().to_string(), overrides)?;
    let encoder = SemanticEncoder::<B>::load(&config.encoder_path()?, device)?;
    let weights_path = dir.join("model.safetensors");
    let weights = Checkpoint::open(std::slice::from_ref(&weights_path))?;
    if config.model.absolute_positions && !weights.contains(POSITIONS_KEY) {
        return Err(SgddError::Weights {
            location: weights_path,
            key: POSITIONS_KEY.into(),
            reason: "missing: the model was trained without the absolute position table \
                     (before model.absolute_positions existed); load it with \
                     --set model.absolute_positions=false"
                .into(),
        });
    }
    let model = build_model::<B, B>(&config, &encoder, EmbeddingInit::Random, device);
    let model = load_module_tensors(model, &weights)?;
    Ok((config, encoder, model))
}

/// What a training run produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// Parameter counts.
    pub params: ParamCounts,
    /// Updates done in this call.
    pub updates: usize,
    /// Best validation metric.
    pub best: BestMetric,
    /// The last validation's logged metrics.
    pub last_valid: Vec<(String, f64)>,
    /// The inference export directory.
    pub export: PathBuf,
}

/// Trains per `config` on autodiff backend `A` (the frozen encoder and validation run on its inner
/// backend; `train.checkpointing` picks `A` in `sgdd_train`). `resume`: a checkpoint of the same task is
/// resumed exactly (model, optimizer, scheduler, position; a checkpoint written while a validation
/// was cut short validates first); one of another task (phase 1 → phase 2) gives the initial
/// weights only. `stop` (e.g. `StopFlag::ctrl_c()`): once raised, the run ends with
/// `CoreError::Interrupted` naming the checkpoint to resume from, after the current update or
/// within one batch of a validation.
pub fn run_training<A: AutodiffBackend>(
    config: &RunConfig,
    resume: Option<&Path>,
    device: &A::Device,
    progress: bool,
    stop: Option<&StopFlag>,
) -> Result<TrainOutcome> {
    run_training_on::<A>(config, resume, std::slice::from_ref(device), progress, stop)
}

/// [`run_training`] with one data-parallel replica per entry of `devices` (a device may repeat:
/// `cpu,cpu`): each micro-batch of `train.batch_size` rows is cut into contiguous shards of
/// (nearly) equal rows, each replica computes its shard's loss (the same draws as on one device,
/// normalised by the whole micro-batch's counts, see [`SgddBatch::whole`]), the gradients are
/// all-reduced before clipping and the step, so the update is that of one device up to rounding.
/// The encoder, validation, logging and checkpoints use the first device. One device is
/// [`run_training`] exactly.
///
/// [`SgddBatch::whole`]: crate::diffusion::SgddBatch::whole
pub fn run_training_on<A: AutodiffBackend>(
    config: &RunConfig,
    resume: Option<&Path>,
    devices: &[A::Device],
    progress: bool,
    stop: Option<&StopFlag>,
) -> Result<TrainOutcome> {
    let Some(device) = devices.first() else {
        return Err(SgddError::Core(latent_core::CoreError::Device {
            spec: String::new(),
            reason: "training needs at least one device".into(),
        }));
    };
    let out = config.train.out_dir.clone();
    std::fs::create_dir_all(&out).map_err(|e| latent_core::CoreError::io(&out, e))?;
    let encoder = SemanticEncoder::<A::InnerBackend>::load(&config.encoder_path()?, device)?;
    let split = split_data(config)?;
    let cache = out.join("cache");
    let train_set = Examples::build(split.train, &encoder, config, Some(&cache), device)?;
    let valid_set = Examples::build(split.valid, &encoder, config, Some(&cache), device)?;
    if train_set.is_empty() || valid_set.is_empty() {
        return Err(SgddError::config(
            "data",
            "data.train_file",
            format!(
                "{} training and {} held-out examples fit max_len {}",
                train_set.len(),
                valid_set.len(),
                config.model.max_len
            ),
        ));
    }
    let model: SgddModel<A> = build_model(config, &encoder, config.model.embedding_init, device);
    let params = ParamCounts {
        encoder: encoder.model.num_params(),
        trainable: model.num_params(),
    };
    let t = &config.train;
    let batches = train_set.len().div_ceil(t.batch_size);
    let total = total_updates(t.epochs, batches, t.accumulation);
    let mut log = RunLog::open(&out, total, 0, progress)?;
    log.describe_loss(
        "SGDD decoder",
        match config.train.loss {
            LossKind::MaskedCe => "masked-token cross-entropy (nats)",
            LossKind::WeightedBound => "weighted bound, Σ w(t)·CE per token (nats)",
        },
    );
    log.note(&format!(
        "sgdd: encoder {} ({} parameters, frozen); trainable {} parameters (vocab {}, width {}); {} train / {} held-out examples ({} + {} over max_len {})",
        config.encoder, params.encoder, params.trainable, model.vocab_size(), config.model.hidden,
        train_set.len(), valid_set.len(), train_set.dropped, valid_set.dropped, config.model.max_len
    ))?;
    if let Some(corpus) = &split.corpus {
        log.note(&corpus.summary())?;
        let text = serde_json::to_string_pretty(corpus).expect("serialisable");
        latent_core::atomic::write_atomic(&out.join("corpus.json"), text.as_bytes())?;
    }
    let groups = [ParamGroupConfig {
        name: "decoder".into(),
        prefixes: vec![],
        lr: t.lr,
        weight_decay: t.weight_decay,
        schedule: t.schedule,
        warmup_ratio: t.warmup_ratio,
    }];
    let adamw = AdamWSettings {
        no_decay_bias_and_norm: true,
        ..Default::default()
    };
    let mut optim = GroupedOptimizer::new(&model, &groups, &adamw, total)?;
    let run_config = serde_json::to_value(config).expect("serialisable");
    let fresh = TrainingState {
        position: Position::default(),
        best: None,
        extra: json!({"seed": t.seed}),
    };
    let (model, state) = match resume {
        None => (model, fresh),
        Some(dir) => {
            let previous: Value = latent_core::config_file::read_config(dir.join("config.json"))?;
            if previous.get("task") == run_config.get("task") {
                log.note(&format!("resuming from {}", dir.display()))?;
                load_checkpoint(dir, model, &mut optim)?
            } else {
                log.note(&format!(
                    "warm start: weights from {} (task {}), fresh optimizer",
                    dir.display(),
                    previous["task"]
                ))?;
                let weights = Checkpoint::open(&[dir.join("model.safetensors")])?;
                (model.load_resizing_positions(&weights)?, fresh)
            }
        }
    };
    let policy = CheckpointPolicy {
        dir: out.clone(),
        every_updates: t.checkpoint_every,
        keep_last: t.keep_last,
        per_epoch: false,
    };
    let mut best = match state.best.clone() {
        Some(b) if b.key == t.best_metric => b,
        _ => BestMetric::new(t.best_metric.clone(), direction_of(&t.best_metric)),
    };
    let loop_config = LoopConfig {
        epochs: t.epochs,
        accumulation: t.accumulation,
        max_grad_norm: t.max_grad_norm,
        start: state.position,
        precision: t.precision,
        seed: t.seed,
    };
    let step = DiffusionStep {
        schedule: MaskSchedule::default(),
        loss: t.loss,
        cfg_prob: t.cfg_prob,
    };
    let tokens_per_batch = t.batch_size * config.model.max_len;
    let paraphrase = config.task == Task::QqpParaphrase;
    // Validation after epoch `epoch` (held-out loss; EM/BLEU of decoded examples when configured),
    // logged; a stop request is honoured within one evaluation batch.
    let validate = |m: &SgddModel<A>,
                    epoch: usize,
                    step: usize,
                    log: &mut RunLog|
     -> latent_core::Result<Vec<(String, f64)>> {
        let valid_model = m.valid();
        let seed = t.seed ^ 0x5eed;
        let loss =
            eval_loss(&valid_model, &valid_set, t.eval_batch_size, seed, stop).map_err(to_core)?;
        let mut logged = vec![
            ("valid/loss".to_string(), loss.masked_ce),
            ("valid/nonpad_loss".to_string(), loss.masked_ce_nonpad),
            ("valid/bound".to_string(), loss.bound_per_token),
            ("valid/ppl_bound".to_string(), loss.ppl_bound),
        ];
        if t.eval_generate > 0 {
            let report = eval_generation(
                &valid_model,
                &encoder,
                &valid_set,
                &config.decode,
                t.eval_batch_size,
                t.eval_generate,
                paraphrase,
                stop,
            )
            .map_err(to_core)?;
            logged.extend([
                ("valid/exact_match".to_string(), report.scores.exact_match),
                ("valid/token_f1".to_string(), report.scores.token_f1),
                (
                    "valid/sentence_bleu".to_string(),
                    report.scores.sentence_bleu,
                ),
                ("valid/corpus_bleu".to_string(), report.scores.corpus_bleu),
                ("valid/cosine".to_string(), report.cosine),
            ]);
            write_samples(
                &out.join(format!("samples_epoch{epoch}.jsonl")),
                &report.samples,
            )
            .map_err(to_core)?;
        }
        log.metrics(step, &logged)?;
        log.note(&format!("epoch {epoch}: {}", fmt_metrics(&logged)))?;
        Ok(logged)
    };
    let mut last_valid = Vec::new();
    let mut state = state;
    if state.evaluation_pending() {
        // Stopped during the validation due here: validate first, then write what was due.
        state.extra = json!({"seed": t.seed});
        let position = state.position;
        let logged = policy.evaluate_or_interrupt(&model, &optim, &state, &run_config, || {
            validate(&model, position.epoch - 1, position.global_step, &mut log)
        })?;
        policy.after_evaluation(&model, &optim, &mut state, &run_config, &mut best, &logged)?;
        policy.after_update(&model, &optim, &state, &run_config, stop)?;
        last_valid = logged;
    }
    let (model, records) = train_data_parallel(
        &DataParallel::local(devices.to_vec()),
        model,
        |_replica| step,
        |epoch| train_set.epoch_batches(t.batch_size, t.seed, epoch, true),
        &mut optim,
        &loop_config,
        |m, o, record, position| {
            log.update(record, record.micro_batches * tokens_per_batch)?;
            let mut state = TrainingState {
                position,
                best: Some(best.clone()),
                extra: json!({"seed": t.seed}),
            };
            if position.next_batch == 0 {
                let logged = policy.evaluate_or_interrupt(m, o, &state, &run_config, || {
                    validate(m, position.epoch - 1, position.global_step, &mut log)
                })?;
                policy.after_evaluation(m, o, &mut state, &run_config, &mut best, &logged)?;
                last_valid = logged;
            }
            policy.after_update(m, o, &state, &run_config, stop)
        },
    )?;
    let final_state = TrainingState {
        position: Position {
            epoch: t.epochs,
            next_batch: 0,
            global_step: records
                .last()
                .map_or(state.position.global_step, |r| r.update + 1),
            ..Default::default()
        },
        best: Some(best.clone()),
        extra: json!({"seed": t.seed}),
    };
    policy.save_final(&model, &optim, &final_state, &run_config)?;
    let export = out.join("export");
    export_model(&model.valid(), &run_config, &export)?;
    log.finish(Some(&best))?;
    Ok(TrainOutcome {
        params,
        updates: records.len(),
        best,
        last_valid,
        export,
    })
}

/// Writes `model.safetensors` (by module path) and the run's `config.json` into `dir`: what
/// [`load_trained`] reads.
pub fn export_model<B: Backend>(
    model: &SgddModel<B>,
    run_config: &Value,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| latent_core::CoreError::io(dir, e))?;
    write_safetensors(
        &dir.join("model.safetensors"),
        &module_tensors(model),
        SaveDtype::F32,
    )?;
    let text = serde_json::to_string_pretty(run_config).expect("serialisable");
    latent_core::atomic::write_atomic(&dir.join("config.json"), text.as_bytes())?;
    Ok(())
}

fn direction_of(key: &str) -> Direction {
    if key.ends_with("loss") || key.ends_with("bound") || key.ends_with("ppl_bound") {
        Direction::Minimize
    } else {
        Direction::Maximize
    }
}

fn to_core(e: SgddError) -> latent_core::CoreError {
    match e {
        SgddError::Core(c) => c,
        other => latent_core::CoreError::Shape(other.to_string()),
    }
}

fn fmt_metrics(values: &[(String, f64)]) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect::<Vec<_>>()
        .join(", ")
}
