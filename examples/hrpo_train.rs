//! Trains a policy with GRPO or HRPO from a YAML config, then evaluates it (greedy pass@1) when the
//! config names an evaluation set.
//!
//! ```text
//! cargo run --release --features cuda --example hrpo_train -- --config configs/grpo/hrpo-qwen2.5-1.5b-gsm8k.yaml
//! cargo run --release --example hrpo_train -- --config configs/grpo/hrpo-qwen2.5-1.5b-gsm8k.yaml --dry-run
//! cargo run --release --example hrpo_train -- --config X.yaml --set grpo.loss.loss_type=dapo --set training.device=cuda
//! ```
//! `--dry-run` prints the trainable parameters per group and the optimizer updates per epoch from
//! `model.config` (or the model's `config.json`) alone, allocating nothing. `--resume` continues
//! from the newest checkpoint in `training.output_dir`; Ctrl-C saves one and stops.
//! `training.checkpointing: true` trains with activation checkpointing (docs/training.md).
//! `--devices cpu,cpu` (or `cuda:0,cuda:1`, built with `--features cuda`) trains one data-parallel
//! replica per device: each rolls out its share of every window's groups, and each micro-batch's
//! completions are split across them (docs/training.md, "Data parallel").

use std::path::PathBuf;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use clap::Parser;
use grpo_rl::batch::EpochPlan;
use grpo_rl::eval::{evaluate, EvalSettings};
use grpo_rl::model::{build, trainable_counts};
use grpo_rl::prompt::PromptBuilder;
use grpo_rl::train::{train_on, TrainOptions};
use grpo_rl::{GrpoRunConfig, Gsm8kReward};
use latent_core::hf::hub::resolve_model;
use latent_core::train::{AutodiffDevicesJob, StopFlag, TrainingJob};
use latent_core::{DeviceList, ModelConfig};

#[derive(Parser, Debug)]
#[command(about = "Train a policy with GRPO / HRPO from a YAML config")]
struct Args {
    /// The run config (configs/grpo/*.yaml).
    #[arg(long)]
    config: PathBuf,
    /// Overrides `dotted.key=value` (repeatable), e.g. `grpo.group_size=8`.
    #[arg(long = "set")]
    overrides: Vec<String>,
    /// Print the trainable parameter counts and updates per epoch, then stop (nothing is allocated).
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

type Out = Result<(), Box<dyn std::error::Error>>;

struct Job {
    args: Args,
    config: GrpoRunConfig,
}

/// The trainable counts and the updates per epoch, from the configs and the prompt file alone
/// (and each replica's share with `replicas` data-parallel devices).
fn dry_run(config: &GrpoRunConfig, replicas: usize) -> Out {
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
    match grpo_rl::prompt::count_prompts(&train, config.data.format) {
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

impl AutodiffDevicesJob for Job {
    type Output = Out;

    fn run<B: AutodiffBackend>(self, devices: Vec<B::Device>) -> Out {
        let Job { args, config } = self;
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
            resume: args.resume,
            progress: !args.quiet,
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
        if let (false, Some(eval)) = (args.no_eval, &config.data.eval) {
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

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Out {
    let args = Args::parse();
    let config = GrpoRunConfig::load(&args.config, &args.overrides)?;
    let devices: DeviceList = args
        .devices
        .as_deref()
        .unwrap_or(&config.training.device)
        .parse()?;
    if args.dry_run {
        return dry_run(&config, devices.specs().len());
    }
    let checkpointing = config.training.checkpointing;
    let job = Job { args, config };
    devices.run(TrainingJob { checkpointing, job })?
}
