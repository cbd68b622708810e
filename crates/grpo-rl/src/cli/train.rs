//! `latent hrpo train`: GRPO / HRPO training from a run config, then greedy pass@1.

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use latent_core::cli::{Flag, JobResult, TrainEvalArgs, TrainSettings};
use latent_core::hf::hub::resolve_model;
use latent_core::train::{AutodiffDevicesJob, StopFlag, TrainingJob};
use latent_core::{DeviceList, ModelConfig};

use crate::batch::EpochPlan;
use crate::eval::{evaluate, EvalSettings};
use crate::model::{build, trainable_counts};
use crate::prompt::PromptBuilder;
use crate::train::{train_on, TrainOptions};
use crate::{GrpoRunConfig, Gsm8kReward};

const JOB: &str = "latent hrpo train";

/// `latent hrpo train`: loads the config (with `--set`, `--device`, `--output-dir`) and trains,
/// or with `--dry-run` prints the counts.
pub fn run(args: TrainEvalArgs) -> JobResult {
    let c = &args.common;
    c.accept(JOB, &Flag::ALL)?;
    let overrides = c.overrides(Some("training.device"), "training.output_dir");
    let config = GrpoRunConfig::load(c.config(JOB)?, &overrides)?;
    let devices: DeviceList = c.device_list(&config.training.device).parse()?;
    if c.dry_run {
        return dry_run(&config, devices.specs().len());
    }
    let settings = args.settings(JOB, &config.training.output_dir)?;
    train(config, settings, &devices)
}

/// Prints the resolved config, the trainable counts per group and the updates per epoch, from
/// the configs and the prompt file alone (and each replica's share with `replicas` devices).
pub fn dry_run(config: &GrpoRunConfig, replicas: usize) -> JobResult {
    let config_path = match (&config.model.config, &config.model.name_or_path) {
        (Some(path), _) => path.clone(),
        (None, Some(spec)) => resolve_model(spec)?.config,
        (None, None) => unreachable!("validated"),
    };
    let model_config = ModelConfig::from_file(&config_path)?;
    let counts = trainable_counts(config, &model_config);
    println!("{}", serde_json::to_string_pretty(config)?);
    println!(
        "model: {} ({} parameters)",
        config_path.display(),
        model_config.num_parameters()
    );
    for (group, n) in &counts {
        println!("trainable {group}: {n}");
    }
    println!(
        "trainable total: {}",
        counts.iter().map(|(_, n)| n).sum::<usize>()
    );
    let train = latent_datasets::data_dir::resolve_data_path(&config.data.train);
    match crate::prompt::count_prompts(&train, config.data.format) {
        Ok(n) => {
            let n = config.data.max_train_samples.map_or(n, |m| n.min(m));
            let plan = EpochPlan {
                prompts: n,
                prompts_per_micro_batch: config.grpo.prompts_per_micro_batch,
                accumulation: config.grpo.accumulation,
                group_size: config.grpo.group_size,
                num_iterations: config.grpo.num_iterations,
                reserve: 0,
                seed: 0,
            };
            println!(
                "prompts: {n}; optimizer updates per epoch: {} ({} prompts x {} completions each)",
                plan.updates(),
                plan.window_prompts(),
                config.grpo.group_size
            );
            if replicas > 1 {
                let per = config.completions_per_micro_batch();
                println!(
                    "replicas: {replicas}; each rolls out {} of a window's {} groups and trains on {} of a micro-batch's {per} completions",
                    plan.window_prompts().div_ceil(replicas),
                    plan.window_prompts(),
                    per.div_ceil(replicas),
                );
            }
        }
        Err(err) => println!("prompts: not counted ({err})"),
    }
    Ok(())
}

/// Trains on `devices` (one data-parallel replica each), prints the report as JSON, then
/// evaluates (greedy pass@1) into `final/eval.json` unless `settings.no_eval`.
pub fn train(config: GrpoRunConfig, settings: TrainSettings, devices: &DeviceList) -> JobResult {
    let checkpointing = config.training.checkpointing;
    let job = Job { settings, config };
    devices.run(TrainingJob { checkpointing, job })?
}

struct Job {
    settings: TrainSettings,
    config: GrpoRunConfig,
}

impl AutodiffDevicesJob for Job {
    type Output = JobResult;

    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> JobResult {
        let Job { settings, config } = self;
        let built = build::<B>(&config, &devices[0])?;
        let builder = PromptBuilder::new(
            built.tokenizer.clone(),
            built.tokenizer_path.clone(),
            built.template.clone(),
            &config.model.system_prompt,
        );
        let prompts = builder.load(
            &config.data.train,
            config.data.format,
            config.data.max_train_samples,
        )?;
        let options = TrainOptions {
            resume: settings.resume,
            progress: !settings.quiet,
            stop: Some(StopFlag::ctrl_c()?),
        };
        let (model, report) = train_on(
            &config,
            built.model,
            &built.tokenizer,
            &prompts,
            Gsm8kReward,
            built.eos_token_ids.clone(),
            built.pad_token_id,
            &options,
            &devices,
        )?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        if let (false, Some(eval)) = (settings.no_eval, &config.data.eval) {
            let prompts = builder.load(eval, config.data.format, config.data.max_eval_samples)?;
            let settings = EvalSettings {
                batch_size: config.eval.batch_size,
                max_new_tokens: config.eval.max_new_tokens,
                mix: config.hrpo.enabled,
                answer_delimiter: config.hrpo.answer_delimiter.clone(),
                eos_token_ids: built.eos_token_ids,
                pad_token_id: built.pad_token_id,
                stop: options.stop.clone(),
            };
            // A Ctrl-C / SIGTERM during the evaluation ends it within one decoding step.
            let summary = evaluate(
                &model.valid(),
                &built.tokenizer,
                &prompts,
                &settings,
                |_| {},
            )
            .map_err(|e| {
                format!(
                    "{e}; the trained policy is saved in {}",
                    report.saved.display()
                )
            })?;
            let path = report.saved.join("eval.json");
            std::fs::write(&path, serde_json::to_string_pretty(&summary)?)?;
            println!(
                "greedy pass@1: {:.1}% ± {:.1} ({} of {}); records in {}",
                100.0 * summary.accuracy,
                100.0 * summary.standard_error,
                summary.correct,
                summary.examples,
                path.display()
            );
        }
        Ok(())
    }
}
