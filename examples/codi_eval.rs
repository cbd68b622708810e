//! Evaluates a saved CODI / CoT-SFT / No-CoT-SFT model (a `final_model` directory) on GSM8K-style
//! data: accuracy (last number, float equality), mean decoded tokens, latent steps, latency per
//! question; with `--probe N`, the top tokens of each continuous thought of the first N questions.
//!
//! ```text
//! cargo run --release --example codi_eval -- --config configs/codi/tiny-cpu.yaml
//! cargo run --release --example codi_eval -- --config configs/codi/gpt2-gsm8k-aug.yaml --model runs/x/final_model --set data.max_eval_samples=100
//! ```
//! By default the model is `training.output_dir/final_model` and the data `data.eval` of the config.

use std::path::PathBuf;

use burn::prelude::*;
use clap::Parser;
use indicatif::ProgressBar;
use latent_codi::config::CodiRunConfig;
use latent_codi::run::{evaluate_saved, load_problems, prep_config, FINAL_MODEL};
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
    /// The saved model directory (default: `training.output_dir/final_model`).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Probe the thoughts of the first N questions.
    #[arg(long, default_value_t = 0)]
    probe: usize,
    /// Where to write the per-question results (default: `<model>/eval.json`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print every question's output.
    #[arg(long)]
    verbose: bool,
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
        let bar = ProgressBar::new(problems.len() as u64);
        let (summary, report) = evaluate_saved::<B>(
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
                    if r.correct { "ok" } else { "--" },
                    r.gold,
                    r.output
                );
            }
        }
        for (i, r) in summary
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.probe.is_empty())
        {
            println!("probe {i}: {}", r.question);
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
