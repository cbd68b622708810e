//! The training driver of `hrpo_train`: the shared loop with the GRPO step, HRPO's parameter
//! groups, logs (`metrics.jsonl`, `training.log`, a progress bar with reward and KL, `loss.png`,
//! `reward.png`), periodic checkpoints, resume, and the trained policy saved in `final/`.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::DType;
use latent_core::hf::safetensors::{write_safetensors, Checkpoint, SaveDtype};
use latent_core::latent::{ThinkingLm, PROJECTION_MODULE};
use latent_core::train::plot::{Plot, Series, Style};
use latent_core::train::{
    load_checkpoint, train_data_parallel, CheckpointPolicy, DataParallel, GroupedOptimizer,
    LoopConfig, Position, RunLog, StopFlag, TrainingState,
};
use latent_core::CoreError;
use serde::Serialize;
use tokenizers::Tokenizer;

use crate::batch::EpochPlan;
use crate::config::GrpoRunConfig;
use crate::model::{adamw, param_groups, save_policy};
use crate::prompt::PromptExample;
use crate::reward::Reward;
use crate::step::{host, projection_change, GrpoStep, StoppedAt};
use crate::{GrpoError, Result};

/// Directory of the trained policy inside the output directory.
pub const FINAL_POLICY: &str = "final";

/// What a run keeps of its start for resuming: the projection's initial weights and, without LoRA,
/// the initial model (the KL reference).
pub const RUN_START: &str = "run_start.safetensors";

/// Options of one training call.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Resume from the newest checkpoint of the output directory (`CheckpointPolicy::latest`), if any.
    pub resume: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// Stop when requested: after the current update, or within one decoding step of a window's
    /// rollouts (checkpointing the state before that window's update); either way the error names
    /// the checkpoint to resume from.
    pub stop: Option<StopFlag>,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// Optimizer updates of this call.
    pub updates: usize,
    /// Wall time.
    pub seconds: f64,
    /// `(update, mean reward of its rollouts)`.
    pub reward_curve: Vec<(usize, f64)>,
    /// Mean reward over the last quarter of the updates.
    pub final_reward: f64,
    /// Mean gate `a` at mixed positions over the last quarter of the updates (1 without mixing).
    pub final_gate_mean: f64,
    /// Mean completion length over the last quarter of the updates.
    pub final_completion_length: f64,
    /// Mean |W_p − W_p(start)| at the end (projection mode).
    pub projection_change: Option<f64>,
    /// Where the policy was saved.
    pub saved: PathBuf,
}

/// The mean of a logged term over the last quarter of `records`.
fn tail_mean(records: &[latent_core::train::UpdateRecord], name: &str, empty: f64) -> f64 {
    let tail = &records[records.len() - records.len().div_ceil(4).min(records.len())..];
    let values: Vec<f64> = tail
        .iter()
        .filter_map(|r| r.terms.iter().find(|(n, _)| n == name).map(|(_, v)| *v))
        .collect();
    if values.is_empty() {
        empty
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// Trains `model` on `prompts` with `config`; returns the trained policy and what happened.
#[allow(clippy::too_many_arguments)]
pub fn train<B: AutodiffBackend, R: Reward + Sync>(
    config: &GrpoRunConfig,
    model: ThinkingLm<B>,
    tokenizer: &Tokenizer,
    prompts: &[PromptExample],
    reward: R,
    eos_token_ids: Vec<u32>,
    pad_token_id: u32,
    options: &TrainOptions,
) -> Result<(ThinkingLm<B>, TrainReport)> {
    let device = model.lm.device();
    train_on(
        config,
        model,
        tokenizer,
        prompts,
        reward,
        eos_token_ids,
        pad_token_id,
        options,
        &[device],
    )
}

/// [`train`] with one replica per device (`--devices cpu,cpu`, `cuda:0,cuda:1`; `model` on
/// `devices[0]`): each replica rolls out a contiguous share of every window's groups (row `r` of
/// the window samples with the window's seed + `r` wherever it is rolled out) and computes a
/// share of the reference (and old-policy) log-probs; the replicas gather every share, so each
/// holds the window one device would have made, with its rewards, advantages, dynamic sampling and
/// `dapo` normaliser. Each micro-batch's completions are then split across the replicas and the
/// gradients all-reduced before the update (`latent_core::train::train_data_parallel`). With one
/// device this is [`train`]. Returns the first replica's policy.
#[allow(clippy::too_many_arguments)]
pub fn train_on<B: AutodiffBackend, R: Reward + Sync>(
    config: &GrpoRunConfig,
    model: ThinkingLm<B>,
    tokenizer: &Tokenizer,
    prompts: &[PromptExample],
    reward: R,
    eos_token_ids: Vec<u32>,
    pad_token_id: u32,
    options: &TrainOptions,
    devices: &[B::Device],
) -> Result<(ThinkingLm<B>, TrainReport)> {
    if devices.is_empty() {
        return Err(GrpoError::Config {
            path: "<config>".into(),
            key: "training.device".into(),
            reason: "no device to train on".into(),
        });
    }
    let t = &config.training;
    let g = &config.grpo;
    let plan = EpochPlan {
        prompts: prompts.len(),
        prompts_per_micro_batch: g.prompts_per_micro_batch,
        accumulation: g.accumulation,
        group_size: g.group_size,
        num_iterations: g.num_iterations,
        reserve: if g.dynamic_sampling {
            config.prompts_per_window()
        } else {
            0
        },
        seed: t.seed,
    };
    if plan.windows() == 0 {
        return Err(GrpoError::Config {
            path: "<config>".into(),
            key: "grpo.prompts_per_micro_batch".into(),
            reason: format!(
                "{} prompts do not fill one generation batch of {}",
                prompts.len(),
                plan.window_prompts()
            ),
        });
    }
    let total = t.epochs * plan.updates();
    let mut optimizer =
        GroupedOptimizer::new(&model, &param_groups(config), &adamw(config), total)?;
    let policy = CheckpointPolicy {
        dir: t.output_dir.clone(),
        every_updates: t.save_every_updates,
        keep_last: t.keep_last,
        per_epoch: false,
    };
    let config_json = serde_json::to_value(config).expect("config serialises");
    // What a resumed run needs of the run's start: the projection's initial weights (for |ΔW_p|)
    // and, without LoRA, the initial model (the KL reference).
    let start_file = t.output_dir.join(RUN_START);
    let (model, start, run_start) = match (options.resume, policy.latest()?) {
        (true, Some(dir)) => {
            let (model, state) = load_checkpoint(&dir, model, &mut optimizer)?;
            let run_start = Checkpoint::open(std::slice::from_ref(&start_file))?;
            (model, state.position, Some(run_start))
        }
        _ => {
            let mut tensors = model.thinking_tensors("");
            tensors.retain(|(k, _)| k.contains(PROJECTION_MODULE));
            if !config.lora.enabled {
                tensors.extend(model.lm.hf_tensors());
            }
            std::fs::create_dir_all(&t.output_dir).map_err(|e| GrpoError::io(&t.output_dir, e))?;
            write_safetensors(&start_file, &tensors, SaveDtype::F32)?;
            (model, Position::default(), None)
        }
    };
    let mut log = RunLog::open(&t.output_dir, total, start.global_step, options.progress)?;
    log.show_terms(&["reward/mean", "kl"]);
    log.describe_loss("GRPO", "policy loss (clipped surrogate + β·KL)");
    let sizes: Vec<String> = optimizer
        .group_sizes()
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    log.note(&format!(
        "{} on {} prompts: {} updates of {} prompts x {} completions ({} windows per epoch); groups: {}",
        if config.hrpo.enabled { "HRPO" } else { "GRPO" },
        prompts.len(),
        total,
        plan.window_prompts(),
        g.group_size,
        plan.windows(),
        sizes.join(", ")
    ))?;
    if devices.len() > 1 {
        log.note(&format!(
            "data parallel: {} replicas share each window's rollouts and each micro-batch's {} completions",
            devices.len(),
            config.completions_per_micro_batch()
        ))?;
    }
    // The reference points of the run: the projection at the start, and, without LoRA, the
    // initial weights as the KL reference (a resumed run reads both from RUN_START).
    let mut projection_start = model.projection.as_ref().map(|p| host(p.weight.val()));
    let mut reference = (!config.lora.enabled).then(|| model.lm.valid());
    if let Some(file) = &run_start {
        if let Some(p) = &model.projection {
            let key = format!("{}{PROJECTION_MODULE}.weight", model.module_prefix());
            let [h, _] = p.weight.dims();
            projection_start = Some(
                file.read_shaped(&key, &[h, h], "the projection at the run's start")?
                    .transposed()
                    .data,
            );
        }
        if !config.lora.enabled {
            let (loaded, _) = model.lm.valid().load_checkpoint(file, DType::F32)?;
            reference = Some(loaded);
        }
    }
    // What each replica's step is made from (behind a lock: a model is `Send`, not `Sync`).
    let template = Mutex::new((model.clone(), reference));
    let stopped = StoppedAt::<B>::default();
    let make_step = |rank: usize| {
        let (model, reference) = template.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut step = GrpoStep::new(
            config,
            &model,
            prompts,
            tokenizer,
            &reward,
            eos_token_ids.clone(),
            pad_token_id,
        );
        step.set_stop(options.stop.clone());
        step.share_stopped(stopped.clone());
        if let Some(start) = &projection_start {
            step.set_projection_start(start.clone());
        }
        if let Some(reference) = reference {
            step.set_reference(reference.to_device(&devices[rank]));
        }
        step
    };
    let loop_config = LoopConfig {
        epochs: t.epochs,
        accumulation: g.accumulation,
        max_grad_norm: t.max_grad_norm,
        start,
        precision: t.precision,
        seed: t.seed,
    };
    let started = Instant::now();
    let completions_per_update = (config.prompts_per_window() * g.group_size) as f64;
    let result = train_data_parallel(
        &DataParallel::local(devices.to_vec()),
        model,
        make_step,
        |epoch| plan.micro_batches(epoch),
        &mut optimizer,
        &loop_config,
        |model, optimizer, record, position| {
            let mean_length = record
                .terms
                .iter()
                .find(|(n, _)| n == "completions/mean_length")
                .map_or(0.0, |(_, v)| *v);
            log.update(record, (mean_length * completions_per_update) as usize)?;
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
    );
    let stopped = stopped.lock().unwrap_or_else(|e| e.into_inner()).take();
    let (model, records) = match (result, stopped) {
        // Stopped inside a window's rollouts: checkpoint the state before that window's update.
        (Err(CoreError::StopRequested { .. }), Some((model, at))) => {
            let state = TrainingState {
                position: Position::before(at),
                best: None,
                extra: serde_json::Value::Null,
            };
            return Err(policy
                .interrupt(&model, &optimizer, &state, &config_json)
                .into());
        }
        (result, _) => result?,
    };
    let seconds = started.elapsed().as_secs_f64();
    log.finish(None)?;
    let reward_curve: Vec<(usize, f64)> = records
        .iter()
        .filter_map(|r| {
            r.terms
                .iter()
                .find(|(n, _)| n == "reward/mean")
                .map(|(_, v)| (r.update + 1, *v))
        })
        .collect();
    if !reward_curve.is_empty() {
        let series: Vec<(f64, f64)> = reward_curve.iter().map(|&(u, r)| (u as f64, r)).collect();
        let run = t.output_dir.file_name().map_or_else(
            || t.output_dir.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        Plot::new(
            format!("GRPO mean reward per update, run {run}"),
            "optimizer update",
            "mean reward of the update's completions",
        )
        .with(Series::new("mean reward", series, Style::Smoothed))
        .save(&t.output_dir.join("reward.png"))?;
    }
    let saved = t.output_dir.join(FINAL_POLICY);
    save_policy(&model.valid(), &saved, config, tokenizer)?;
    let report = TrainReport {
        updates: records.len(),
        seconds,
        final_reward: tail_mean(&records, "reward/mean", 0.0),
        final_gate_mean: tail_mean(&records, "thinking/gate_mean", 1.0),
        final_completion_length: tail_mean(&records, "completions/mean_length", 0.0),
        projection_change: projection_start
            .as_deref()
            .and_then(|start| projection_change(start, &model)),
        reward_curve,
        saved,
    };
    Ok((model, report))
}
