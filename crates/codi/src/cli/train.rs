//! `latent codi train`: CODI (or the CoT-SFT / No-CoT-SFT baselines) from a run config, then an
//! evaluation of the final model.

use std::path::PathBuf;

use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::prelude::Backend;
use burn::tensor::backend::AutodiffBackend;
use latent_core::cli::{Flag, JobResult, TrainEvalArgs, TrainSettings};
use latent_core::train::{AutodiffDevicesJob, StopFlag, TrainingJob};
use latent_core::{DeviceList, DevicesJob};

use crate::config::{resolve_data_path, CodiRunConfig};
use crate::data::prepare;
use crate::eval::{evaluate, EvalConfig};
use crate::model::count_parameters;
use crate::run::{
    build, build_model, load_problems, make_trainable, micro_batching, prep_config, train_on,
    training_examples, TrainOptions,
};

const JOB: &str = "latent codi train";

/// `latent codi train`: loads the config (with `--set`, `--device`, `--output-dir`) and trains,
/// or with `--dry-run` prints the counts.
pub fn run(args: TrainEvalArgs) -> JobResult {
    let c = &args.common;
    c.accept(JOB, &Flag::ALL)?;
    let overrides = c.overrides(Some("training.device"), "training.output_dir");
    let config = CodiRunConfig::load(c.config(JOB)?, &overrides)?;
    let devices: DeviceList = c.device_list(&config.training.device).parse()?;
    if c.dry_run {
        // Counting parameters needs no accelerator: as many CPU replicas instead.
        let cpus: DeviceList = vec!["cpu"; devices.specs().len()].join(",").parse()?;
        return cpus.run(CountJob(config))?;
    }
    let settings = args.settings(JOB, &config.training.output_dir)?;
    train(config, settings, &devices)
}

/// Trains on `devices` (one data-parallel replica each), prints the report as JSON, then evaluates
/// into `training.output_dir/eval.json` unless `settings.no_eval`.
pub fn train(config: CodiRunConfig, settings: TrainSettings, devices: &DeviceList) -> JobResult {
    let checkpointing = config.training.checkpointing;
    let job = Job { settings, config };
    devices.run(TrainingJob { checkpointing, job })?
}

struct Job {
    settings: TrainSettings,
    config: CodiRunConfig,
}

impl AutodiffDevicesJob for Job {
    type Output = JobResult;

    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> JobResult {
        let Job { settings, config } = self;
        let device = devices[0].clone();
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
            resume: settings.resume,
            progress: !settings.quiet,
            stop: Some(StopFlag::ctrl_c()?),
        };
        let (model, report) = train_on::<B>(&config, built, &examples, &options, &devices)?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        let Some(eval_path) = config.data.eval.clone().filter(|_| !settings.no_eval) else {
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

/// `--dry-run`: [`dry_run`] on as many CPU replicas as the run has devices.
struct CountJob(CodiRunConfig);

impl DevicesJob for CountJob {
    type Output = JobResult;

    fn run<B: Backend>(self, devices: Vec<B::Device>) -> JobResult {
        dry_run::<Autodiff<B>>(&self.0, &devices[0], devices.len())
    }
}

/// Builds the architecture with lazy random weights, attaches what training would, and prints
/// the resolved config and the counts.
pub fn dry_run<B: AutodiffBackend>(
    config: &CodiRunConfig,
    device: &B::Device,
    replicas: usize,
) -> JobResult {
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
