//! `latent bench codi-step`: time and peak memory of CODI training steps on a randomly initialised model, with or without
//! activation checkpointing; prints one JSON line.
//!
//! ```text
//! cargo build --release --example bench_codi_step
//! target/release/examples/bench_codi_step --steps 3                    # Autodiff<Flex>
//! target/release/examples/bench_codi_step --steps 3 --checkpointing    # Autodiff<Flex, BalancedCheckpointing>
//! target/release/examples/bench_codi_step --set lora=null              # full fine-tuning instead of LoRA
//! ```
//! The run config (default: the published GPT-2 small run, `configs/codi/gpt2-gsm8k-aug.yaml`:
//! LoRA r = 128 on `c_attn`, `c_proj`, `c_fc`, frozen embeddings, the projection, 6 thoughts) is
//! read with `--set` overrides; the model is built from its `model.config` with random weights (no
//! download, as `codi_train --dry-run`). Every step trains on the same synthetic micro-batch of
//! `--batch` examples with `--question`, `--cot` and `--answer` random token ids each (defaults
//! 4 × 64 / 96 / 8: round lengths at the upper end of GSM8k-Aug's, whose validation questions have
//! a median of 215 characters, about 50 GPT-2 tokens, and whose equation CoTs are shorter; 4
//! examples per micro-batch where the published run has 32 on an A100), through
//! `latent_core::train::train` as `codi_train` does: the CODI loss (teacher pass, question pass,
//! 6 latent steps, decoder pass), backward, global-norm clipping and the AdamW update. `--no-update` times forward + backward
//! only. Peak RSS is the process's, so run one process per mode; `peak_rss_before_steps_mb` is
//! the peak after building the model, before the first step. Timing excludes `--warmup` steps;
//! each step reports its wall time and the CPU time of the whole process (all threads, from
//! `/proc/self/stat`), which on a shared machine moves less than the wall time.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use latent_codi::batch::{collate, CodiBatch};
use latent_codi::config::CodiRunConfig;
use latent_codi::data::Tokenized;
use latent_codi::model::count_parameters;
use latent_codi::run::{build_model, make_trainable};
use latent_codi::step::CodiStep;
use latent_codi::SpecialTokens;
use latent_core::cli::{CommonArgs, Flag, JobResult};
use latent_core::train::{
    train, AutodiffJob, LoopConfig, Precision, StepIndex, TrainStep, TrainingJob,
};
use latent_core::{peak_rss_mb, DeviceSpec};
use latent_datasets::answer::GoldAnswer;

#[derive(clap::Args, Debug, Clone)]
pub struct CodiStepArgs {
    /// The common flags (`--config`: the CODI run config, default configs/codi/gpt2-gsm8k-aug.yaml; `--set`, `--device`, `--dry-run` apply).
    #[command(flatten)]
    pub common: CommonArgs,
    /// Train on `Autodiff<B, BalancedCheckpointing>` (sets `training.checkpointing`).
    #[arg(long)]
    pub checkpointing: bool,
    /// Examples per micro-batch.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Question tokens per example.
    #[arg(long, default_value_t = 64)]
    pub question: usize,
    /// CoT tokens per example.
    #[arg(long, default_value_t = 96)]
    pub cot: usize,
    /// Answer tokens per example (`The answer is: X`).
    #[arg(long, default_value_t = 8)]
    pub answer: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Forward + backward only (no clipping, no optimizer update).
    #[arg(long)]
    pub no_update: bool,
    /// Training numerics (sets `training.precision`).
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
}

/// Wall and process CPU time since the last lap.
struct Laps {
    wall: Instant,
    cpu: Option<f64>,
}

/// One step's seconds: wall time and CPU time of the process (all threads).
#[derive(Debug, Clone, Copy)]
struct Lap {
    wall: f64,
    cpu: Option<f64>,
}

/// CPU seconds (user + system) of this process so far, from `/proc/self/stat` (Linux reports
/// them in units of 1/100 s), or `None` where unavailable.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3)?.parse::<f64>().ok();
    Some((ticks(14)? + ticks(15)?) / 100.0)
}

impl Laps {
    fn start() -> Self {
        Self {
            wall: Instant::now(),
            cpu: process_cpu_seconds(),
        }
    }

    fn lap(&mut self) -> Lap {
        let now = Self::start();
        let lap = Lap {
            wall: (now.wall - self.wall).as_secs_f64(),
            cpu: now.cpu.zip(self.cpu).map(|(b, a)| b - a),
        };
        *self = now;
        lap
    }
}

/// splitmix64: the synthetic ids, reproducible without a random-number crate.
struct Ids(u64);

impl Ids {
    fn next(&mut self, below: usize) -> u32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % below as u64) as u32
    }

    fn take(&mut self, n: usize, below: usize) -> Vec<u32> {
        (0..n).map(|_| self.next(below)).collect()
    }
}

/// A micro-batch of `args.batch` examples of random ids below the base vocabulary.
fn synthetic_batch(args: &CodiStepArgs, tokens: &SpecialTokens) -> CodiBatch {
    let mut ids = Ids(0x5EED);
    let vocab = tokens.base_vocab;
    let examples: Vec<Tokenized> = (0..args.batch)
        .map(|_| Tokenized {
            question_text: String::new(),
            question: ids.take(args.question, vocab),
            cot: ids.take(args.cot, vocab),
            answer: ids.take(args.answer, vocab),
            pre_answer: args.answer.saturating_sub(2),
            gold: GoldAnswer {
                text: "0".into(),
                value: 0.0,
            },
        })
        .collect();
    let refs: Vec<&Tokenized> = examples.iter().collect();
    collate(&refs, tokens, true)
}

/// The times of each of `n` optimizer updates of `codi_train`'s loop (loss, backward, clipping,
/// AdamW), one micro-batch per update.
fn update_seconds<B: AutodiffBackend>(
    model: latent_codi::CodiModel<B>,
    config: &CodiRunConfig,
    step: &mut CodiStep,
    batch: &CodiBatch,
    n: usize,
) -> Result<Vec<Lap>, Box<dyn std::error::Error>> {
    let t = &config.training;
    let mut optimizer = latent_codi::run::codi_optimizer(&model, config, n)?;
    let loop_config = LoopConfig {
        epochs: 1,
        accumulation: 1,
        max_grad_norm: t.max_grad_norm,
        start: Default::default(),
        precision: t.precision,
        seed: t.seed,
    };
    let mut laps = Vec::with_capacity(n);
    let mut clock = Laps::start();
    train(
        model,
        step,
        |_| vec![batch.clone(); n],
        &mut optimizer,
        &loop_config,
        |_, _, _, _| {
            // The loop has read the loss and the gradient norm back to the host: the update is done.
            laps.push(clock.lap());
            Ok(())
        },
    )?;
    Ok(laps)
}

/// The times of each of `n` forward + backward passes.
fn backward_seconds<B: AutodiffBackend>(
    model: &latent_codi::CodiModel<B>,
    step: &mut CodiStep,
    batch: &CodiBatch,
    n: usize,
    device: &B::Device,
) -> Result<Vec<Lap>, Box<dyn std::error::Error>> {
    let mut laps = Vec::with_capacity(n);
    let mut clock = Laps::start();
    for micro_batch in 0..n {
        let at = StepIndex {
            micro_batch,
            ..StepIndex::default()
        };
        let loss = step.loss(model, batch, at)?.loss;
        let grads = loss.backward();
        B::sync(device)?;
        drop(grads);
        laps.push(clock.lap());
    }
    Ok(laps)
}

struct Bench {
    args: CodiStepArgs,
    config: CodiRunConfig,
    device: DeviceSpec,
    config_path: PathBuf,
}

impl AutodiffJob for Bench {
    type Output = Result<serde_json::Value, Box<dyn std::error::Error>>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let Bench {
            args,
            config,
            device: spec,
            config_path,
        } = self;
        let (model, _, meta) = build_model::<B>(&config, &device)?;
        let model = make_trainable(model, &config)?;
        let counts = count_parameters(&model);
        let lm = model.lm.config().clone();
        let batch = synthetic_batch(&args, &meta.tokens);
        let mut step = CodiStep {
            task: config.method.task,
            loss: config.loss(),
            train_rows_from: None,
        };
        let before_steps = peak_rss_mb();
        let n = args.warmup + args.steps;
        let all = if args.no_update {
            backward_seconds(&model, &mut step, &batch, n, &device)?
        } else {
            update_seconds(model, &config, &mut step, &batch, n)?
        };
        let timed = &all[args.warmup.min(all.len())..];
        let wall: Vec<f64> = timed.iter().map(|l| l.wall).collect();
        let cpu: Option<Vec<f64>> = timed.iter().map(|l| l.cpu).collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        Ok(serde_json::json!({
            "bench": "codi_step",
            "backend": std::any::type_name::<B>(),
            "checkpointing": config.training.checkpointing,
            "config": config_path,
            "overrides": args.common.overrides,
            "model_config": config.model.config,
            "task": config.method.task.label(),
            "lora": config.lora.as_ref().map(|l| l.r),
            "parameters": counts.total,
            "trainable_parameters": counts.trainable,
            "hidden_size": lm.hidden_size,
            "layers": lm.num_hidden_layers,
            "num_latent": config.method.num_latent,
            "mode": if args.no_update { "forward+backward" } else { "forward+backward+clip+adamw" },
            "device": spec.to_string(),
            "dtype": config.model.dtype,
            "precision": config.training.precision.to_string(),
            "batch": args.batch,
            "question_tokens": args.question,
            "cot_tokens": args.cot,
            "answer_tokens": args.answer,
            "teacher_shape": [batch.teacher.ids.rows, batch.teacher.ids.cols],
            "question_shape": [batch.question.0.rows, batch.question.0.cols],
            "decoder_shape": [batch.decoder.ids.rows, batch.decoder.ids.cols],
            "warmup": args.warmup,
            "steps": args.steps,
            "seconds_per_step": wall,
            "ms_per_step": 1000.0 * mean(&wall),
            "cpu_seconds_per_step": cpu,
            "cpu_ms_per_step": cpu.as_deref().map(|c| 1000.0 * mean(c)),
            "peak_rss_before_steps_mb": before_steps,
            "peak_rss_mb": peak_rss_mb(),
        }))
    }
}

const JOB: &str = "latent bench codi-step";

/// The default run config: the published GPT-2 small run.
const DEFAULT_CONFIG: &str = "configs/codi/gpt2-gsm8k-aug.yaml";

impl CodiStepArgs {
    /// Builds the model from the run config on `--device` (default cpu), times the steps and prints
    /// the JSON line.
    pub fn run(self) -> JobResult {
        let c = &self.common;
        c.accept(JOB, &[Flag::Config, Flag::Set, Flag::Device, Flag::DryRun])?;
        let config_path = c
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
        let device = c.device_spec()?;
        let mut config = CodiRunConfig::load(&config_path, &c.overrides)?;
        if config.model.config.is_none() {
            return Err(format!(
                "{}: model.config is not set (the benchmark builds the architecture from it)",
                config_path.display()
            )
            .into());
        }
        // Random weights from the architecture file: nothing is downloaded or loaded.
        config.model.name_or_path = None;
        config.method.restore_from = None;
        config.training.checkpointing |= self.checkpointing;
        config.training.precision = self.precision;
        config.training.device = device.to_string();
        if c.dry_run {
            println!("{}", serde_json::to_string_pretty(&config)?);
            println!("{self:#?}");
            return Ok(());
        }
        let checkpointing = config.training.checkpointing;
        let report = device.run(TrainingJob {
            checkpointing,
            job: Bench {
                args: self,
                config,
                device,
                config_path,
            },
        })??;
        println!("{report}");
        Ok(())
    }
}
