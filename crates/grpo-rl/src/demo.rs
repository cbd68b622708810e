//! The CPU-sized demo (`cargo run --release --example grpo_demo`): a tiny Llama trained briefly with
//! CoT-SFT (latent-codi's recipe, answers written after `####`) on the CODI experiment's synthetic
//! GSM8k-Aug-format problems, to a mediocre greedy accuracy; then, from that checkpoint with the
//! same number of updates and seeds, GRPO, HRPO with probability-weighted thinking states, and HRPO
//! with the learned projection (two-pass training); held-out greedy accuracy before and after,
//! reward curves, gate values and |ΔW_p|.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::DType;
use latent_codi::config::DataFormat;
use latent_codi::data::{prepare, Problem};
use latent_codi::experiment::{beside, phase, setup, write, write_results, ExperimentConfig};
use latent_codi::run::{load_problems, prep_config};
use latent_codi::CodiModel;
use latent_core::latent::{ThinkingLm, ThinkingResidualConfig, ThinkingSource};
use latent_core::seed_backend;
use latent_core::train::plot::{Plot, Series, Style};
use latent_core::train::ScheduleKind;
use serde::Serialize;
use tokenizers::Tokenizer;

use crate::config::{
    DataSection, EvalSection, GrpoRunConfig, GrpoSection, HrpoSection, LoraSection, ModelSection,
    PromptFormat, TrainingSection,
};
use crate::eval::{evaluate, EvalSettings, EvalSummary};
use crate::loss::LossConfig;
use crate::prompt::PromptExample;
use crate::reward::Gsm8kReward;
use crate::train::{train, TrainOptions, TrainReport};
use crate::Result;

/// Settings of the demo (the defaults are the documented run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoConfig {
    /// Where everything goes.
    pub output_dir: PathBuf,
    /// Seed of data, initialisation, shuffling and sampling.
    pub seed: u64,
    /// Problems generated for training (SFT uses the first `sft_examples`, RL all of them).
    pub train_examples: usize,
    /// Held-out problems.
    pub test_examples: usize,
    /// Problems of the supervised warm start.
    pub sft_examples: usize,
    /// Epochs of the warm start.
    pub sft_epochs: usize,
    /// Keep the last reasoning step in the chain of thought (the default: every answer then follows
    /// from written equations; CODI's data drops it, and a model trained on that computes the last
    /// step silently, which GRPO did not improve, see docs/results.md).
    pub keep_last_step: bool,
    /// Optimizer updates of each RL run.
    pub rl_updates: usize,
    /// Completions per prompt.
    pub group_size: usize,
    /// Prompts per micro-batch.
    pub prompts_per_micro_batch: usize,
    /// Micro-batches per update.
    pub accumulation: usize,
    /// Sampling temperature of the rollouts.
    pub temperature: f32,
    /// Learning rate of the model's weights (full fine-tuning).
    pub learning_rate: f64,
    /// Learning rate of the residual's gates and of the projection.
    pub lr_thinking: f64,
    /// Learning rate of Λ.
    pub lr_lambda: f64,
    /// KL weight.
    pub beta: f64,
    /// Longest completion.
    pub max_completion_length: usize,
    /// RL variants to run, in order (two at a time, one per core).
    pub variants: Vec<Variant>,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            output_dir: PathBuf::from("runs/grpo-demo"),
            seed: 11,
            train_examples: 8000,
            test_examples: 500,
            sft_examples: 8000,
            sft_epochs: 1,
            keep_last_step: true,
            rl_updates: 200,
            group_size: 8,
            prompts_per_micro_batch: 4,
            accumulation: 2,
            temperature: 0.5,
            learning_rate: 5e-5,
            lr_thinking: 1e-3,
            lr_lambda: 1e-2,
            beta: 0.005,
            max_completion_length: 32,
            variants: vec![Variant::Grpo, Variant::Hrpo, Variant::Projection],
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct DemoRow {
    /// Method.
    pub method: String,
    /// Held-out greedy accuracy (%).
    pub accuracy: f64,
    /// Its standard error (points).
    pub standard_error: f64,
    /// Mean reward over the last quarter of the updates (`None` for the SFT start).
    pub final_reward: Option<f64>,
    /// Mean gate `a` at mixed positions over the last quarter of the updates.
    pub gate_mean: Option<f64>,
    /// Mean |ΔW_p| at the end.
    pub projection_change: Option<f64>,
    /// Mean completion tokens at evaluation.
    pub completion_tokens: f64,
    /// Mean mixed positions at evaluation.
    pub thinking_tokens: f64,
    /// Optimizer updates.
    pub updates: usize,
    /// Training wall time (s).
    pub train_seconds: f64,
}

/// The demo's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// Settings.
    pub config: DemoConfig,
    /// SFT start, GRPO, HRPO, HRPO + projection.
    pub rows: Vec<DemoRow>,
    /// Reward curves of the three runs: `(method, [(update, reward)])`.
    pub curves: Vec<(String, Vec<(usize, f64)>)>,
    /// Total wall time (s).
    pub seconds: f64,
}

impl DemoReport {
    /// The table in Markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::from(
            "| method | held-out accuracy (%) | ± s.e. | reward (last 25% of updates) | mean gate a | mean abs ΔW_p | completion tokens | mixed positions | updates | train time (s) |\n|---|---|---|---|---|---|---|---|---|---|\n",
        );
        let opt = |v: Option<f64>, digits: usize| match v {
            Some(v) => format!("{v:.digits$}"),
            None => "—".into(),
        };
        for r in &self.rows {
            s.push_str(&format!(
                "| {} | {:.1} | {:.1} | {} | {} | {} | {:.1} | {:.1} | {} | {:.0} |\n",
                r.method,
                r.accuracy,
                r.standard_error,
                opt(r.final_reward, 3),
                opt(r.gate_mean, 4),
                match r.projection_change {
                    Some(v) => format!("{v:.2e}"),
                    None => "—".into(),
                },
                r.completion_tokens,
                r.thinking_tokens,
                r.updates,
                r.train_seconds
            ));
        }
        s
    }
}

/// A variant of the RL phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// Plain GRPO (no mixing).
    Grpo,
    /// HRPO with probability-weighted thinking states.
    Hrpo,
    /// HRPO with the learned `thinking_projection` (two-pass training).
    Projection,
}

impl std::str::FromStr for Variant {
    type Err = String;

    /// `grpo`, `hrpo` or `projection`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "grpo" => Ok(Variant::Grpo),
            "hrpo" => Ok(Variant::Hrpo),
            "projection" => Ok(Variant::Projection),
            other => Err(format!(
                "unknown variant {other:?} (expected grpo, hrpo or projection)"
            )),
        }
    }
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::Grpo => "GRPO",
            Variant::Hrpo => "HRPO (probability-weighted)",
            Variant::Projection => "HRPO + thinking_projection",
        }
    }

    fn dir(self) -> &'static str {
        match self {
            Variant::Grpo => "grpo",
            Variant::Hrpo => "hrpo",
            Variant::Projection => "hrpo_projection",
        }
    }
}

/// The RL run config of `variant` (the model is passed in, so `model` only names it).
fn run_config(cfg: &DemoConfig, variant: Variant, sft: &Path, prompts: usize) -> GrpoRunConfig {
    let window = cfg.prompts_per_micro_batch * cfg.accumulation;
    let epochs = (cfg.rl_updates * window).div_ceil(prompts.max(1)).max(1);
    GrpoRunConfig {
        model: ModelSection {
            name_or_path: Some(sft.display().to_string()),
            config: None,
            tokenizer: None,
            dtype: "f32".into(),
            chat_template: false,
            system_prompt: String::new(),
            eos_token_ids: Vec::new(),
            pad_token_id: None,
        },
        lora: LoraSection {
            enabled: false,
            ..LoraSection::default()
        },
        hrpo: HrpoSection {
            enabled: variant != Variant::Grpo,
            thinking: if variant == Variant::Projection {
                ThinkingSource::Projection
            } else {
                ThinkingSource::ProbabilityWeighted
            },
            ..HrpoSection::default()
        },
        grpo: GrpoSection {
            group_size: cfg.group_size,
            prompts_per_micro_batch: cfg.prompts_per_micro_batch,
            accumulation: cfg.accumulation,
            temperature: cfg.temperature,
            top_k: 0,
            max_completion_length: cfg.max_completion_length,
            loss: LossConfig {
                beta: cfg.beta,
                ..LossConfig::default()
            },
            ..GrpoSection::default()
        },
        training: TrainingSection {
            output_dir: cfg.output_dir.join(variant.dir()),
            epochs,
            learning_rate: cfg.learning_rate,
            lr_residual_gate: cfg.lr_thinking,
            lr_residual_lambda: cfg.lr_lambda,
            lr_thinking_projection: cfg.lr_thinking,
            weight_decay: 0.1,
            warmup_ratio: 0.1,
            schedule: ScheduleKind::Cosine,
            max_grad_norm: Some(1.0),
            adam_beta1: 0.9,
            adam_beta2: 0.99,
            seed: cfg.seed,
            save_every_updates: 0,
            keep_last: 1,
            projection_log_every: 10,
            device: "cpu".into(),
            precision: Default::default(),
            checkpointing: false,
        },
        data: DataSection {
            train: cfg.output_dir.join("data/train.txt"),
            format: PromptFormat::Icot,
            max_train_samples: Some((cfg.rl_updates * window).div_ceil(epochs)),
            eval: Some(cfg.output_dir.join("data/test.txt")),
            max_eval_samples: None,
        },
        eval: EvalSection {
            batch_size: 100,
            max_new_tokens: cfg.max_completion_length,
        },
    }
}

/// Prompts of `problems` tokenised as the CoT-SFT model saw its questions.
fn prompts_of(
    problems: &[Problem],
    tokenizer: &Tokenizer,
    sft: &CodiModel<impl burn::prelude::Backend>,
    base: &latent_codi::config::CodiRunConfig,
    meta: &latent_codi::CodiMeta,
) -> Result<Vec<PromptExample>> {
    let prep = prep_config(base, meta, sft.lm.config());
    let (examples, _) = prepare(problems, tokenizer, &prep)?;
    Ok(examples
        .into_iter()
        .map(|e| PromptExample {
            question: e.question_text,
            gold: e.gold.text,
            ids: e.question,
        })
        .collect())
}

/// What one RL variant produced.
struct VariantResult {
    row: DemoRow,
    curve: Vec<(usize, f64)>,
}

/// One RL run from the CoT-SFT checkpoint in `sft_dir`. Each run loads its own copy: runs on
/// concurrent threads must not share autodiff parameters (Burn's graph locking deadlocks).
#[allow(clippy::too_many_arguments)]
fn run_variant<B: AutodiffBackend>(
    cfg: &DemoConfig,
    variant: Variant,
    sft_dir: &Path,
    device: &B::Device,
    tokenizer: &Tokenizer,
    train_prompts: &[PromptExample],
    test_prompts: &[PromptExample],
    eos: u32,
    progress: bool,
) -> Result<VariantResult> {
    let run = run_config(cfg, variant, sft_dir, train_prompts.len());
    let prompts = &train_prompts[..run
        .data
        .max_train_samples
        .unwrap_or(train_prompts.len())
        .min(train_prompts.len())];
    let lm = CodiModel::<B>::load(sft_dir, device, DType::F32)?.0.lm;
    let model = {
        let _rng = seed_backend::<B>(device, cfg.seed.wrapping_add(7));
        let mut model = ThinkingLm::new(lm, &ThinkingResidualConfig::default(), run.hrpo.thinking)?;
        if !run.hrpo.enabled {
            model.residual = burn::module::Module::no_grad(model.residual);
        }
        model
    };
    let options = TrainOptions {
        resume: false,
        progress,
        stop: None,
    };
    let (model, report): (_, TrainReport) = train(
        &run,
        model,
        tokenizer,
        prompts,
        Gsm8kReward,
        vec![eos],
        eos,
        &options,
    )?;
    let settings = EvalSettings {
        batch_size: run.eval.batch_size,
        max_new_tokens: run.eval.max_new_tokens,
        mix: run.hrpo.enabled,
        answer_delimiter: run.hrpo.answer_delimiter.clone(),
        eos_token_ids: vec![eos],
        pad_token_id: eos,
        stop: None,
    };
    let summary = evaluate(&model.valid(), tokenizer, test_prompts, &settings, |_| {})?;
    write_eval(&run.training.output_dir, &summary)?;
    Ok(VariantResult {
        row: DemoRow {
            method: variant.label().into(),
            accuracy: 100.0 * summary.accuracy,
            standard_error: 100.0 * summary.standard_error,
            final_reward: Some(report.final_reward),
            gate_mean: run.hrpo.enabled.then_some(report.final_gate_mean),
            projection_change: report.projection_change,
            completion_tokens: summary.mean_tokens,
            thinking_tokens: summary.mean_thinking_tokens,
            updates: report.updates,
            train_seconds: report.seconds,
        },
        curve: report.reward_curve,
    })
}

fn write_eval(dir: &Path, summary: &EvalSummary) -> Result<()> {
    write(
        &dir.join("eval.json"),
        &serde_json::to_string_pretty(summary).expect("json"),
    )?;
    Ok(())
}

/// What the supervised warm start left: where its model is, its updates and wall time, and the
/// settings it was trained with (a later run with the same settings reuses it).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
struct WarmStart {
    saved: PathBuf,
    updates: usize,
    seconds: f64,
    settings: (u64, usize, usize, usize, bool),
}

/// The CoT-SFT warm start: trained, or reused from `output_dir/sft` when a previous run with the
/// same seed and data settings left it there.
fn warm_start<B: AutodiffBackend>(
    cfg: &DemoConfig,
    base: &latent_codi::config::CodiRunConfig,
    test: &[Problem],
    device: &B::Device,
    progress: bool,
) -> Result<WarmStart> {
    let record = cfg.output_dir.join("sft").join("warm_start.json");
    let settings = (
        cfg.seed,
        cfg.train_examples,
        cfg.sft_examples,
        cfg.sft_epochs,
        cfg.keep_last_step,
    );
    if let Ok(text) = std::fs::read_to_string(&record) {
        if let Ok(done) = serde_json::from_str::<WarmStart>(&text) {
            if done.settings == settings && done.saved.join("codi.json").exists() {
                return Ok(done);
            }
        }
    }
    let (report, _) = phase::<B>(base, test, device, progress)?;
    let done = WarmStart {
        saved: report.saved,
        updates: report.updates,
        seconds: report.seconds,
        settings,
    };
    write(&record, &serde_json::to_string_pretty(&done).expect("json"))?;
    Ok(done)
}

/// Runs the whole demo on `device`.
pub fn run_demo<B: AutodiffBackend>(
    cfg: &DemoConfig,
    device: &B::Device,
    progress: bool,
) -> Result<DemoReport> {
    let started = Instant::now();
    let experiment = ExperimentConfig {
        output_dir: cfg.output_dir.clone(),
        seed: cfg.seed,
        train_examples: cfg.train_examples,
        test_examples: cfg.test_examples,
        ..ExperimentConfig::default()
    };
    let mut base = setup(&experiment)?;
    base.method.answer_prefix = "#### ".into();
    base.training.epochs = cfg.sft_epochs;
    base.training.output_dir = cfg.output_dir.join("sft");
    base.data.max_train_samples = Some(cfg.sft_examples);
    base.data.keep_last_step = cfg.keep_last_step;
    let test = load_problems(
        base.data.eval.as_ref().expect("set"),
        DataFormat::Icot,
        None,
    )?;
    let sft_report = warm_start::<B>(cfg, &base, &test, device, progress)?;
    let (sft, tokenizer, meta) = CodiModel::<B>::load(&sft_report.saved, device, DType::F32)?;
    let tokenizer = tokenizer.expect("the CoT-SFT model is saved with its tokenizer");
    let train_problems = load_problems(
        base.data.train.as_ref().expect("set"),
        DataFormat::Icot,
        None,
    )?;
    let train_prompts = prompts_of(&train_problems, &tokenizer, &sft, &base, &meta)?;
    let test_prompts = prompts_of(&test, &tokenizer, &sft, &base, &meta)?;
    let eos = sft.tokens.eos;
    let lm = sft.lm;
    let start_settings = EvalSettings {
        batch_size: 100,
        max_new_tokens: cfg.max_completion_length,
        mix: false,
        answer_delimiter: "####".into(),
        eos_token_ids: vec![eos],
        pad_token_id: eos,
        stop: None,
    };
    let start_model = ThinkingLm::without_thinking(lm.valid());
    let start = evaluate(
        &start_model,
        &tokenizer,
        &test_prompts,
        &start_settings,
        |_| {},
    )?;
    write_eval(&cfg.output_dir.join("sft"), &start)?;
    let sft_dir = sft_report.saved.clone();
    let run = |variant: Variant, show: bool| {
        run_variant::<B>(
            cfg,
            variant,
            &sft_dir,
            device,
            &tokenizer,
            &train_prompts,
            &test_prompts,
            eos,
            show,
        )
    };
    // Two runs at a time share the 2 cores (the tiny model's ops run on one core each).
    let mut results = Vec::new();
    for pair in cfg.variants.chunks(2) {
        match *pair {
            [a, b] => {
                let (first, second) = beside(|| run(a, progress), || run(b, false));
                results.push(first?);
                results.push(second?);
            }
            [a] => results.push(run(a, progress)?),
            _ => unreachable!("chunks of at most two"),
        }
    }
    let mut rows = vec![DemoRow {
        method: "CoT-SFT start".into(),
        accuracy: 100.0 * start.accuracy,
        standard_error: 100.0 * start.standard_error,
        final_reward: None,
        gate_mean: None,
        projection_change: None,
        completion_tokens: start.mean_tokens,
        thinking_tokens: 0.0,
        updates: sft_report.updates,
        train_seconds: sft_report.seconds,
    }];
    let mut curves = Vec::new();
    for r in results {
        curves.push((r.row.method.clone(), r.curve));
        rows.push(r.row);
    }
    let mut plot = Plot::new(
        "GRPO demo: mean reward per update of each variant",
        "optimizer update",
        "mean reward of the update's completions",
    )
    .size(900, 520);
    for (method, curve) in &curves {
        let points = curve.iter().map(|&(u, r)| (u as f64, r)).collect();
        plot = plot.with(Series::new(method.as_str(), points, Style::Smoothed));
    }
    plot.save(&cfg.output_dir.join("reward_curves.png"))?;
    let report = DemoReport {
        config: cfg.clone(),
        rows,
        curves,
        seconds: started.elapsed().as_secs_f64(),
    };
    write_results(&cfg.output_dir, &report, &report.markdown())?;
    Ok(report)
}
