//! `latent hrpo eval`: greedy pass@1 of a saved policy with HRPO's protocol.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use latent_core::cli::{CommonArgs, Flag, JobResult};
use latent_core::latent::ThinkingLm;
use latent_core::{parse_dtype, BackendJob, DeviceSpec};

use crate::eval::{evaluate, EvalSettings};
use crate::model::{load_base, load_policy};
use crate::prompt::PromptBuilder;
use crate::{GrpoError, GrpoRunConfig};

const JOB: &str = "latent hrpo eval";

/// Arguments of `latent hrpo eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The common flags (`--config` is required).
    #[command(flatten)]
    pub common: CommonArgs,
    /// The saved policy (`<output_dir>/final`); omitted: the base model.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Where to write the records.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl EvalArgs {
    /// Loads the config and evaluates on `training.device` (or `--device`).
    pub fn run(self) -> JobResult {
        let c = &self.common;
        c.accept(JOB, &Flag::EVALUATE)?;
        let path = c.config(JOB)?.to_path_buf();
        let overrides = c.overrides(Some("training.device"), "training.output_dir");
        let config = GrpoRunConfig::load(&path, &overrides)?;
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| match (&c.output_dir, &self.policy) {
                (Some(dir), _) => dir.join("eval.json"),
                (None, Some(dir)) => dir.join("eval.json"),
                (None, None) => PathBuf::from("eval.json"),
            });
        if c.dry_run {
            println!("{}", serde_json::to_string_pretty(&config)?);
            println!(
                "{}",
                serde_json::json!({"policy": self.policy, "eval": config.data.eval, "out": out})
            );
            return Ok(());
        }
        evaluate_policy(&path, config, self.policy.as_deref(), &out, c.quiet)
    }
}

/// Evaluates `policy` (or the base model) as trained with `config` (read from `config_path`),
/// prints the summary line and writes the records to `out` (`quiet`: no progress line).
pub fn evaluate_policy(
    config_path: &Path,
    config: GrpoRunConfig,
    policy: Option<&Path>,
    out: &Path,
    quiet: bool,
) -> JobResult {
    let device: DeviceSpec = config.training.device.parse()?;
    device.run(Job {
        config_path: config_path.into(),
        config,
        policy: policy.map(Into::into),
        out: out.into(),
        quiet,
    })?
}

struct Job {
    config_path: PathBuf,
    config: GrpoRunConfig,
    policy: Option<PathBuf>,
    out: PathBuf,
    quiet: bool,
}

impl BackendJob for Job {
    type Output = JobResult;

    fn run<B: Backend>(self, device: B::Device) -> JobResult {
        let Job {
            config_path,
            config,
            policy,
            out,
            quiet,
        } = self;
        let dtype = parse_dtype(&config.model.dtype)?;
        let (base, tokenizer, tokenizer_path, template) = load_base::<B>(&config, &device)?;
        let eos = crate::model::eos_ids(&config, &base, template.as_ref(), &tokenizer)?;
        let (model, mix) = match &policy {
            Some(dir) => {
                let (model, meta) = load_policy(base, dir, dtype)?;
                (model, meta.hrpo)
            }
            None => (ThinkingLm::without_thinking(base), false),
        };
        let eval = config.data.eval.as_ref().ok_or_else(|| GrpoError::Config {
            path: config_path.clone(),
            key: "data.eval".into(),
            reason: "no evaluation set".into(),
        })?;
        let builder = PromptBuilder::new(
            tokenizer.clone(),
            tokenizer_path,
            template,
            &config.model.system_prompt,
        );
        let prompts = builder.load(eval, config.data.format, config.data.max_eval_samples)?;
        let settings = EvalSettings {
            batch_size: config.eval.batch_size,
            max_new_tokens: config.eval.max_new_tokens,
            mix,
            answer_delimiter: config.hrpo.answer_delimiter.clone(),
            pad_token_id: config.model.pad_token_id.unwrap_or(eos[0]),
            stop: None,
            eos_token_ids: eos,
        };
        let summary = evaluate(&model, &tokenizer, &prompts, &settings, |done| {
            if !quiet {
                eprint!("\r{done}/{} prompts", prompts.len())
            }
        })?;
        if !quiet {
            eprintln!();
        }
        std::fs::write(&out, serde_json::to_string_pretty(&summary)?)?;
        println!(
            "greedy pass@1: {:.1}% ± {:.1} ({} of {}), {:.1} tokens, {:.1} mixed positions per completion; records in {}",
            100.0 * summary.accuracy,
            100.0 * summary.standard_error,
            summary.correct,
            summary.examples,
            summary.mean_tokens,
            summary.mean_thinking_tokens,
            out.display()
        );
        Ok(())
    }
}
