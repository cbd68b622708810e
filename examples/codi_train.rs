//! Trains CODI (or the CoT-SFT / No-CoT-SFT baselines) from a YAML config, then evaluates the
//! final model when the config names an evaluation set.
//!
//! ```text
//! cargo run --release --example codi_train -- --config configs/codi/tiny-cpu.yaml
//! cargo run --release --example codi_train -- --config configs/codi/gpt2-gsm8k-aug.yaml --dry-run
//! cargo run --release --example codi_train -- --config X.yaml --set training.epochs=3 --set method.task=cot_sft
//! ```
//! `--resume` continues from the newest checkpoint in `training.output_dir`; Ctrl-C saves one and stops.
//! `training.checkpointing: true` trains with activation checkpointing (docs/training.md).
//! `--devices cpu,cpu` (or `cuda:0,cuda:1`, built with `--features cuda`) trains one data-parallel
//! replica per device: `per_device_batch_size` examples on each, `effective_batch_size` per update.

use std::path::PathBuf;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use clap::Parser;
use latent_codi::config::{resolve_data_path, CodiRunConfig};
use latent_codi::data::prepare;
use latent_codi::eval::{evaluate, EvalConfig};
use latent_codi::model::count_parameters;
use latent_codi::run::{
    build, build_model, load_problems, make_trainable, micro_batching, prep_config, train_on,
    training_examples, TrainOptions,
};
use latent_core::train::{AutodiffDevicesJob, StopFlag, TrainingJob};
use latent_core::DeviceList;

#[derive(Parser, Debug)]
#[command(about = "Train CODI / CoT-SFT / No-CoT-SFT from a YAML config")]
struct Args {
    /// The run config (configs/codi/*.yaml).
    #[arg(long)]
    config: PathBuf,
    /// Overrides `dotted.key=value` (repeatable), e.g. `training.epochs=3`.
    #[arg(long = "set")]
    overrides: Vec<String>,
    /// Print the resolved config, parameter counts and the records of the data files, then stop
    /// (no weights are loaded: the model is built from `model.config`).
    #[arg(long)]
    dry_run: bool,
    /// Resume from the newest checkpoint in the output directory.
    #[arg(long)]
    resume: bool,
    /// Skip the evaluation after training.
    #[arg(long)]
    no_eval: bool,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    /// Data-parallel replicas, one per device (`cpu,cpu`, `cuda:0,cuda:1`); default:
    /// `training.device`.
    #[arg(long)]
    devices: Option<String>,
}

struct Job {
    args: Args,
    config: CodiRunConfig,
}

type Out = Result<(), Box<dyn std::error::Error>>;

impl AutodiffDevicesJob for Job {
    type Output = Out;

    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> Out {
        let Job { args, config } = self;
        let device = devices[0].clone();
        if args.dry_run {
            return dry_run::<B>(&config, &device, devices.len());
        }
        let built = build::<B>(&config, &device)?;
        let prep = prep_config(&config, &built.meta, built.model.lm.config());
        let (examples, report) = training_examples(&config, &built)?;
        let train_path = config
            .data
            .train
            .as_deref()
            .unwrap_or(std::path::Path::new(""));
        eprintln!("training data {}: {report:?}", train_path.display());
        let tokenizer = built.tokenizer.clone();
        let num_latent = built.meta.num_latent;
        let options = TrainOptions {
            resume: args.resume,
            progress: !args.quiet,
            stop: Some(StopFlag::ctrl_c()?),
        };
        let (model, report) = train_on::<B>(&config, built, &examples, &options, &devices)?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        let Some(eval_path) = config.data.eval.clone().filter(|_| !args.no_eval) else {
            return Ok(());
        };
        let problems = load_problems(
            &eval_path,
            config.data.eval_format,
            config.data.max_eval_samples,
        )?;
        let (examples, _) = prepare(&problems, &tokenizer, &prep)?;
        // A Ctrl-C / SIGTERM during the evaluation ends it within one batch.
        let eval = EvalConfig {
            stop: options.stop.clone(),
            ..config.eval_config(num_latent)
        };
        let summary = evaluate(
            &model.valid(),
            config.method.task,
            &tokenizer,
            &examples,
            &eval,
            |_| {},
        )
        .map_err(|e| {
            format!(
                "{e}; the trained model is saved in {}",
                report.saved.display()
            )
        })?;
        let out = config.training.output_dir.join("eval.json");
        std::fs::write(&out, serde_json::to_string_pretty(&summary)?)?;
        println!(
            "{} on {}: accuracy {:.2}% ({}/{}), {:.1} tokens, {:.0} latent steps, {:.1} ms/question; details in {}",
            config.method.task.label(),
            eval_path.display(),
            100.0 * summary.accuracy,
            summary.correct,
            summary.examples,
            summary.mean_tokens,
            summary.mean_latent_steps,
            1000.0 * summary.seconds_per_example,
            out.display()
        );
        Ok(())
    }
}

/// Builds the architecture with lazy random weights, attaches what training would, and counts.
fn dry_run<B: AutodiffBackend>(config: &CodiRunConfig, device: &B::Device, replicas: usize) -> Out {
    let mut arch = config.clone();
    if arch.model.config.is_some() {
        arch.model.name_or_path = None;
    }
    let (model, _, meta) = build_model::<B>(&arch, device)?;
    let model = make_trainable(model, config)?;
    let all = count_parameters(&model);
    let prj = count_parameters(&model.prj);
    // The data files are read (not tokenized: no tokenizer is loaded) and their records counted.
    let count = |path: &Option<PathBuf>, format, limit| match path {
        None => serde_json::Value::Null,
        Some(path) => match load_problems(path, format, limit) {
            Ok(problems) => serde_json::json!({
                "path": resolve_data_path(path),
                "records": problems.len(),
            }),
            Err(e) => serde_json::json!({ "path": path, "error": e.to_string() }),
        },
    };
    let d = &config.data;
    let data = serde_json::json!({
        "train": count(&d.train, d.train_format, d.max_train_samples),
        "eval": count(&d.eval, d.eval_format, d.max_eval_samples),
    });
    println!("{}", serde_json::to_string_pretty(config)?);
    println!(
        "{}",
        serde_json::json!({
            "parameters": all.total,
            "trainable_parameters": all.trainable,
            "projection_parameters": prj.total,
            "vocab_size": model.lm.config().vocab_size,
            "special_tokens": meta.tokens,
            "replicas": replicas,
            "accumulation": micro_batching(config, replicas)?.1,
            "data": data,
        })
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
            let devices: DeviceList = args
                .devices
                .as_deref()
                .unwrap_or(&config.training.device)
                .parse()?;
            // Counting parameters needs no accelerator: as many CPU replicas instead.
            let devices: DeviceList = if args.dry_run {
                vec!["cpu"; devices.specs().len()].join(",").parse()?
            } else {
                devices
            };
            let checkpointing = config.training.checkpointing;
            let job = Job { args, config };
            devices.run(TrainingJob { checkpointing, job })?
        });
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
