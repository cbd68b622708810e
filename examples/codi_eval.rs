//! Evaluates a saved CODI / CoT-SFT / No-CoT-SFT model (a `final_model` directory) on GSM8K-style
//! data: accuracy (last number, float equality), mean decoded tokens, latent steps, latency per
//! question; with `--probe N`, the top tokens of each continuous thought of the first N questions.
//!
//! ```text
//! cargo run --release --example codi_eval -- --config configs/codi/tiny-cpu.yaml
//! cargo run --release --example codi_eval -- --config configs/codi/gpt2-gsm8k-aug.yaml --model runs/x/final_model --set data.max_eval_samples=100
//! ```
//! By default the model is `training.output_dir/final_model` and the data `data.eval` of the config.
//!
//! `--model` may also be a checkpoint directory of the reference PyTorch implementation
//! (`pytorch_model.bin` or `model.safetensors` with the whole CODI state dict, LoRA unmerged, no
//! `codi.json`): the config then supplies what it does not record (`model.config` or
//! `model.name_or_path` for the base architecture, `model.tokenizer` or the base model's tokenizer,
//! `lora.alpha`, `method.num_latent`, `model.add_bos`, `model.eos_token_id`; see docs/codi.md).
//!
//! ```text
//! cargo run --release --features cuda --example codi_eval -- --config configs/codi/gpt2-gsm8k-aug.yaml --model path/to/CODI-gpt2
//! ```
//!
//! Hybrid decoding (`docs/codi-hybrid.md`): `--baseline_mode adaptive,explicit,latent,random`
//! decodes with the entropy controller or a baseline (one comma-separated list, one table row each);
//! `--window_e_to_l`, `--window_l_to_e`, `--max_switch_count`, `--max_latent_steps`,
//! `--explicit_probability` (random mode) set the controller; `--verbose` prints mode traces.
//!
//! ```text
//! cargo run --release --example codi_eval -- --config configs/codi/tiny-cpu.yaml --baseline_mode adaptive,random --verbose
//! ```

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::DType;
use clap::Parser;
use indicatif::ProgressBar;
use latent_codi::config::CodiRunConfig;
use latent_codi::eval::EvalConfig;
use latent_codi::hybrid::phase1::entropy_plans;
use latent_codi::hybrid::{
    evaluate_hybrid, BaselineMode, ControllerConfig, HybridSettings, SwitchRule,
};
use latent_codi::model::CodiModel;
use latent_codi::run::{evaluate_saved, load_problems, load_saved, prep_config, FINAL_MODEL};
use latent_core::{BackendJob, DeviceSpec};

#[derive(Parser, Debug)]
#[command(about = "Evaluate a saved CODI model on GSM8K-style data")]
struct Args {
    /// The run config (its `data.eval`, `eval` and `training.output_dir` are used).
    #[arg(long)]
    config: PathBuf,
    /// Overrides `dotted.key=value` (repeatable).
    #[arg(long = "set")]
    overrides: Vec<String>,
    /// The saved model directory (default: `training.output_dir/final_model`), or a reference
    /// checkpoint directory.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Probe the thoughts of the first N questions.
    #[arg(long, default_value_t = 0)]
    probe: usize,
    /// Where to write the per-question results (default: `<model>/eval.json`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print every question's output (and, with `--baseline_mode`, its mode trace).
    #[arg(long)]
    verbose: bool,
    /// Hybrid decoding modes, comma-separated: adaptive, explicit, latent, random, planned.
    #[arg(long = "baseline_mode", value_delimiter = ',')]
    baseline_mode: Vec<BaselineMode>,
    /// When adaptive and random modes switch: `step` (at CoT step boundaries on the model's
    /// `<bot>` probability, whole steps of thoughts) or `entropy` (the spec's rule).
    #[arg(long = "switch_rule", default_value = "step")]
    switch_rule: SwitchRule,
    /// Step rule: `<bot>` probability from which the next step is latent.
    #[arg(long = "bot_threshold", default_value_t = 0.5)]
    bot_threshold: f32,
    /// Step rule: thoughts per latent step (default: the model's `hybrid.json`, else 3).
    #[arg(long = "latents_per_step")]
    latents_per_step: Option<usize>,
    /// Planned mode: the model whose step entropies on the gold CoT, against the threshold of
    /// the evaluated model's `hybrid.json`, place the runs (Phase 1's CoT model; default: the
    /// evaluated model).
    #[arg(long = "plan_model")]
    plan_model: Option<PathBuf>,
    /// Entropy rule: steps to stay explicit before switching into latent mode.
    #[arg(long = "window_e_to_l", default_value_t = 5)]
    window_e_to_l: usize,
    /// Entropy rule: steps to stay latent before switching back.
    #[arg(long = "window_l_to_e", default_value_t = 0)]
    window_l_to_e: usize,
    /// Switches after which explicit mode is locked.
    #[arg(long = "max_switch_count", default_value_t = 5)]
    max_switch_count: usize,
    /// Consecutive thoughts after which latent mode is left (default: the model's
    /// `hybrid.json`, else 6).
    #[arg(long = "max_latent_steps")]
    max_latent_steps: Option<usize>,
    /// Random mode: probability that a step is explicit.
    #[arg(long = "explicit_probability", default_value_t = 0.5)]
    explicit_probability: f64,
    /// Entropy rule: switch into latent mode only right after a CoT step ends.
    #[arg(long = "switch_at_step_end")]
    switch_at_step_end: bool,
}

struct Job {
    args: Args,
    config: CodiRunConfig,
}

type Out = Result<(), Box<dyn std::error::Error>>;

impl BackendJob for Job {
    type Output = Out;

    fn run<B: Backend>(self, device: B::Device) -> Out {
        let Job { args, config } = self;
        let dir = args
            .model
            .clone()
            .unwrap_or_else(|| config.training.output_dir.join(FINAL_MODEL));
        let path = config.data.eval.clone().ok_or("data.eval is not set")?;
        let problems = load_problems(&path, config.data.eval_format, config.data.max_eval_samples)?;
        let mut eval = config.eval_config(config.method.num_latent);
        eval.probe_examples = eval.probe_examples.max(args.probe);
        if !args.baseline_mode.is_empty() {
            return hybrid::<B>(&args, &config, &dir, &problems, &eval, &device);
        }
        let bar = ProgressBar::new(problems.len() as u64);
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
        let out = args.out.unwrap_or_else(|| dir.join("eval.json"));
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
    args: &Args,
    config: &CodiRunConfig,
    dir: &std::path::Path,
    problems: &[latent_codi::data::Problem],
    eval: &EvalConfig,
    device: &B::Device,
) -> Out {
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
        let bar = ProgressBar::new(loaded.examples.len() as u64);
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
        .unwrap_or_else(|| dir.join("eval_hybrid.json"));
    std::fs::write(&out, serde_json::to_string_pretty(&summaries)?)?;
    println!(
        "{} questions ({} dropped by preprocessing); details in {}",
        loaded.examples.len(),
        loaded.report.total - loaded.report.kept,
        out.display()
    );
    Ok(())
}

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = Args::parse();
    let result = CodiRunConfig::load(&args.config, &args.overrides)
        .map_err(Into::into)
        .and_then(|config| {
            let device: DeviceSpec = config.training.device.parse()?;
            device.run(Job { args, config })?
        });
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
