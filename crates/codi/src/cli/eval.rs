//! `latent codi eval`: evaluates a saved CODI / CoT-SFT / No-CoT-SFT model on GSM8K-style data,
//! in plain or hybrid decoding.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::DType;
use indicatif::ProgressBar;
use latent_core::cli::{CommonArgs, Flag, JobResult};
use latent_core::{BackendJob, DeviceSpec};

use crate::config::CodiRunConfig;
use crate::eval::EvalConfig;
use crate::hybrid::phase1::entropy_plans;
use crate::hybrid::{evaluate_hybrid, BaselineMode, ControllerConfig, HybridSettings, SwitchRule};
use crate::model::CodiModel;
use crate::run::{evaluate_saved, load_problems, load_saved, prep_config, FINAL_MODEL};

const JOB: &str = "latent codi eval";

/// Arguments of `latent codi eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The common flags (`--config` is required: its `data.eval`, `eval` and
    /// `training.output_dir` are used).
    #[command(flatten)]
    pub common: CommonArgs,
    /// The saved model directory (default: `training.output_dir/final_model`), or a reference
    /// checkpoint directory.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Probe the thoughts of the first N questions.
    #[arg(long, default_value_t = 0)]
    pub probe: usize,
    /// Where to write the per-question results (default: `<model>/eval.json`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print every question's output (and, with `--baseline_mode`, its mode trace).
    #[arg(long)]
    pub verbose: bool,
    /// Hybrid decoding modes, comma-separated: adaptive, explicit, latent, random, planned.
    #[arg(long = "baseline_mode", value_delimiter = ',')]
    pub baseline_mode: Vec<BaselineMode>,
    /// When adaptive and random modes switch: `step` (at CoT step boundaries on the model's
    /// `<bot>` probability, whole steps of thoughts) or `entropy` (the spec's rule).
    #[arg(long = "switch_rule", default_value = "step")]
    pub switch_rule: SwitchRule,
    /// Step rule: `<bot>` probability from which the next step is latent.
    #[arg(long = "bot_threshold", default_value_t = 0.5)]
    pub bot_threshold: f32,
    /// Step rule: thoughts per latent step (default: the model's `hybrid.json`, else 3).
    #[arg(long = "latents_per_step")]
    pub latents_per_step: Option<usize>,
    /// Planned mode: the model whose step entropies on the gold CoT, against the threshold of
    /// the evaluated model's `hybrid.json`, place the runs (Phase 1's CoT model; default: the
    /// evaluated model).
    #[arg(long = "plan_model")]
    pub plan_model: Option<PathBuf>,
    /// Entropy rule: steps to stay explicit before switching into latent mode.
    #[arg(long = "window_e_to_l", default_value_t = 5)]
    pub window_e_to_l: usize,
    /// Entropy rule: steps to stay latent before switching back.
    #[arg(long = "window_l_to_e", default_value_t = 0)]
    pub window_l_to_e: usize,
    /// Switches after which explicit mode is locked.
    #[arg(long = "max_switch_count", default_value_t = 5)]
    pub max_switch_count: usize,
    /// Consecutive thoughts after which latent mode is left (default: the model's
    /// `hybrid.json`, else 6).
    #[arg(long = "max_latent_steps")]
    pub max_latent_steps: Option<usize>,
    /// Random mode: probability that a step is explicit.
    #[arg(long = "explicit_probability", default_value_t = 0.5)]
    pub explicit_probability: f64,
    /// Entropy rule: switch into latent mode only right after a CoT step ends.
    #[arg(long = "switch_at_step_end")]
    pub switch_at_step_end: bool,
}

impl EvalArgs {
    /// Loads the config (with `--set`, `--device`) and evaluates on `training.device`.
    pub fn run(self) -> JobResult {
        let c = &self.common;
        c.accept(JOB, &Flag::EVALUATE)?;
        let overrides = c.overrides(Some("training.device"), "training.output_dir");
        let config = CodiRunConfig::load(c.config(JOB)?, &overrides)?;
        if c.dry_run {
            let dir = self.model_dir(&config);
            println!("{}", serde_json::to_string_pretty(&config)?);
            println!(
                "{}",
                serde_json::json!({"model": dir, "eval": config.data.eval, "out_dir": out_dir(&self, &dir), "baseline_mode": self.baseline_mode.iter().map(|m| m.name()).collect::<Vec<_>>()})
            );
            return Ok(());
        }
        evaluate_model(self, config)
    }

    /// The evaluated model: `--model`, else `training.output_dir/final_model`.
    fn model_dir(&self, config: &CodiRunConfig) -> PathBuf {
        self.model
            .clone()
            .unwrap_or_else(|| config.training.output_dir.join(FINAL_MODEL))
    }
}

/// Evaluates as `args` say with the resolved `config` on its `training.device`, printing the
/// summary (or one row per hybrid mode).
pub fn evaluate_model(args: EvalArgs, config: CodiRunConfig) -> JobResult {
    let device: DeviceSpec = config.training.device.parse()?;
    device.run(Job { args, config })?
}

/// Where the results go without `--out`: `--output-dir`, else the model's directory.
fn out_dir(args: &EvalArgs, model: &Path) -> PathBuf {
    args.common
        .output_dir
        .clone()
        .unwrap_or_else(|| model.to_path_buf())
}

fn progress_bar(len: usize, quiet: bool) -> ProgressBar {
    if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(len as u64)
    }
}

struct Job {
    args: EvalArgs,
    config: CodiRunConfig,
}

impl BackendJob for Job {
    type Output = JobResult;

    fn run<B: Backend>(self, device: B::Device) -> JobResult {
        let Job { args, config } = self;
        let dir = args.model_dir(&config);
        let path = config.data.eval.clone().ok_or("data.eval is not set")?;
        let problems = load_problems(&path, config.data.eval_format, config.data.max_eval_samples)?;
        let mut eval = config.eval_config(config.method.num_latent);
        eval.probe_examples = eval.probe_examples.max(args.probe);
        if !args.baseline_mode.is_empty() {
            return hybrid::<B>(&args, &config, &dir, &problems, &eval, &device);
        }
        let bar = progress_bar(problems.len(), args.common.quiet);
        let (summary, report) = evaluate_saved::<B>(
            &config,
            &dir,
            &problems,
            |meta, lm| prep_config(&config, meta, lm),
            &eval,
            &device,
            |done| bar.set_position(done as u64),
        )?;
        bar.finish_and_clear();
        if args.verbose {
            for r in &summary.records {
                println!(
                    "[{}] gold {} | {}",
                    if r.answer.correct { "ok" } else { "--" },
                    r.answer.gold,
                    r.answer.output
                );
            }
        }
        for (i, r) in summary
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.probe.is_empty())
        {
            println!("probe {i}: {}", r.answer.question);
            for (k, top) in r.probe.iter().enumerate() {
                let tokens: Vec<String> =
                    top.iter().map(|(t, p)| format!("{t:?} {p:.2}")).collect();
                println!("  thought {}: {}", k + 1, tokens.join(", "));
            }
        }
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| out_dir(&args, &dir).join("eval.json"));
        std::fs::write(&out, serde_json::to_string_pretty(&summary)?)?;
        println!(
            "{} on {} ({} questions, {} dropped by preprocessing): accuracy {:.2}%, {:.1} tokens, {:.0} latent steps, {:.1} ms/question; details in {}",
            summary.task.label(),
            path.display(),
            summary.examples,
            report.total - report.kept,
            100.0 * summary.accuracy,
            summary.mean_tokens,
            summary.mean_latent_steps,
            1000.0 * summary.seconds_per_example,
            out.display()
        );
        Ok(())
    }
}

/// Evaluates every `--baseline_mode` with hybrid decoding and prints one row per mode.
fn hybrid<B: Backend>(
    args: &EvalArgs,
    config: &CodiRunConfig,
    dir: &Path,
    problems: &[crate::data::Problem],
    eval: &EvalConfig,
    device: &B::Device,
) -> JobResult {
    let loaded = load_saved::<B>(
        config,
        dir,
        problems,
        |m, lm| prep_config(config, m, lm),
        device,
    )?;
    let settings = HybridSettings::read(dir)?;
    let plans = if args.baseline_mode.contains(&BaselineMode::Planned) {
        let threshold = settings
            .as_ref()
            .ok_or("planned mode needs the model's hybrid.json (a Phase 2 model)")?
            .entropy_threshold;
        let plan_dir = args.plan_model.as_deref().unwrap_or(dir);
        let (plan_model, _, _) = CodiModel::<B>::load(plan_dir, device, DType::F32)?;
        if loaded.examples.len() != problems.len() {
            return Err("planned mode needs every question kept by preprocessing".into());
        }
        let prep = prep_config(config, &loaded.meta, loaded.model.lm.config());
        Some(entropy_plans(
            &plan_model,
            &loaded.tokenizer,
            problems,
            &prep,
            threshold,
            eval.batch_size,
        )?)
    } else {
        None
    };
    println!("| mode | accuracy (%) | explicit tokens | latent steps | switches | wall time (s) |");
    println!("|---|---|---|---|---|---|");
    let mut summaries = Vec::new();
    for &mode in &args.baseline_mode {
        let controller = ControllerConfig {
            mode,
            rule: args.switch_rule,
            latents_per_step: args
                .latents_per_step
                .or(settings.as_ref().map(|s| s.latents_per_step))
                .unwrap_or(3),
            bot_threshold: args.bot_threshold,
            window_e_to_l: args.window_e_to_l,
            window_l_to_e: args.window_l_to_e,
            max_switch_count: args.max_switch_count,
            max_latent_steps: args
                .max_latent_steps
                .or(settings.as_ref().map(|s| s.max_latent_steps))
                .unwrap_or(6),
            num_latent: loaded.meta.num_latent,
            explicit_probability: args.explicit_probability,
            seed: config.training.seed,
            switch_at_step_end: args.switch_at_step_end,
        };
        let bar = progress_bar(loaded.examples.len(), args.common.quiet);
        let s = evaluate_hybrid(
            &loaded.model,
            &loaded.tokenizer,
            &loaded.examples,
            eval,
            &controller,
            plans.as_deref(),
            |done| bar.set_position(done as u64),
        )?;
        bar.finish_and_clear();
        if args.verbose {
            for r in &s.records {
                let mark = if r.answer.correct { "ok" } else { "--" };
                println!(
                    "[{mark}] {} gold {} | {} | {}",
                    mode.name(),
                    r.answer.gold,
                    r.trace,
                    r.answer.output
                );
            }
        }
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} |",
            mode.name(),
            100.0 * s.accuracy,
            s.mean_tokens,
            s.mean_latent_steps,
            s.mean_switches,
            s.seconds
        );
        summaries.push(s);
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| out_dir(args, dir).join("eval_hybrid.json"));
    std::fs::write(&out, serde_json::to_string_pretty(&summaries)?)?;
    println!(
        "{} questions ({} dropped by preprocessing); details in {}",
        loaded.examples.len(),
        loaded.report.total - loaded.report.kept,
        out.display()
    );
    Ok(())
}
