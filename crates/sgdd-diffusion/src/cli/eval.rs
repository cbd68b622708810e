//! `latent sgdd eval`: a trained SGDD model on its test data.

use std::path::PathBuf;

use burn::prelude::*;
use latent_core::cli::{CommonArgs, Flag, JobResult};
use latent_core::BackendJob;

use crate::baselines::baselines;
use crate::config::Task;
use crate::data::{split_pairs, test_pairs, Examples};
use crate::eval::{eval_generation, eval_loss, write_samples};
use crate::train::load_trained;

const JOB: &str = "latent sgdd eval";

/// Arguments of `latent sgdd eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The common flags (`--set`, `--device`, `--output-dir`, `--dry-run` apply).
    #[command(flatten)]
    pub common: CommonArgs,
    /// Checkpoint or export directory (model.safetensors + config.json).
    #[arg(long)]
    pub model: PathBuf,
    /// Examples decoded (0 = all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Evaluate on the run's training pairs instead of its test pairs (a memorisation check).
    #[arg(long)]
    pub on_train: bool,
    /// Output directory (same as `--output-dir`; default: the model directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl EvalArgs {
    /// Evaluates on `--device` (default cpu).
    pub fn run(self) -> JobResult {
        let c = &self.common;
        let out = self
            .out
            .clone()
            .or(c.output_dir.clone())
            .unwrap_or_else(|| self.model.clone());
        let uses = [Flag::Set, Flag::Device, Flag::OutputDir, Flag::DryRun];
        let Some(device) = c.start_on_device(JOB, &uses, &(&self, &out))? else {
            return Ok(());
        };
        Ok(device.run(Eval { args: self, out })??)
    }
}

struct Eval {
    args: EvalArgs,
    out: PathBuf,
}

impl BackendJob for Eval {
    type Output = crate::Result<()>;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        let Eval { args, out } = self;
        let (config, encoder, model) =
            load_trained::<B>(&args.model, &args.common.overrides, &device)?;
        std::fs::create_dir_all(&out).map_err(|e| latent_core::CoreError::io(&out, e))?;
        let mut pairs = if args.on_train {
            split_pairs(&config)?.0
        } else {
            test_pairs(&config)?
        };
        if args.limit > 0 {
            pairs.truncate(args.limit);
        }
        let examples =
            Examples::build(pairs, &encoder, &config, Some(&out.join("cache")), &device)?;
        let loss = eval_loss(
            &model,
            &examples,
            config.train.eval_batch_size,
            config.train.seed ^ 0x5eed,
            None,
        )?;
        let paraphrase = config.task == Task::QqpParaphrase;
        let report = eval_generation(
            &model,
            &encoder,
            &examples,
            &config.decode,
            config.train.eval_batch_size,
            0,
            paraphrase,
            None,
        )?;
        let mut report = report;
        let baselines = if args.on_train {
            None
        } else {
            // Retrieval searches the run's training pairs (vectors from the run's cache when there).
            let run_cache = config.train.out_dir.join("cache");
            let cache = if run_cache.is_dir() {
                run_cache
            } else {
                out.join("cache")
            };
            let train = Examples::build(
                split_pairs(&config)?.0,
                &encoder,
                &config,
                Some(&cache),
                &device,
            )?;
            let b = baselines(&train, &examples);
            for (sample, retrieved) in report.samples.iter_mut().zip(&b.retrieved) {
                sample.retrieved = Some(retrieved.clone());
            }
            Some(b)
        };
        write_samples(&out.join("samples.jsonl"), &report.samples)?;
        let metrics = serde_json::json!({
            "model": args.model,
            "task": config.task,
            "examples": examples.len(),
            "dropped_over_max_len": examples.dropped,
            "loss": loss,
            "generation": report,
            "baselines": baselines,
            "decode": config.decode,
        });
        let text = serde_json::to_string_pretty(&metrics).expect("serialisable");
        latent_core::atomic::write_atomic(&out.join("metrics.json"), text.as_bytes())?;
        println!("{text}");
        Ok(())
    }
}
