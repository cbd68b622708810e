//! `latent prm collect`: noisy latent paths of a CODI reasoner for the latent reward model.

use std::path::PathBuf;

use burn::prelude::*;
use latent_codi::config::DataFormat;
use latent_core::cli::{CommonArgs, Flag, JobResult};
use latent_core::BackendJob;

use crate::collect::{collect, CollectInputs, Reasoner, SamplingConfig};

const JOB: &str = "latent prm collect";

/// Arguments of `latent prm collect`.
#[derive(clap::Args, Debug)]
pub struct CollectArgs {
    /// The common flags (`--device`, `--output-dir`, `--quiet`, `--dry-run` apply).
    #[command(flatten)]
    pub common: CommonArgs,
    /// A CODI checkpoint directory (`codi.json`, `model/`).
    #[arg(long)]
    pub reasoner: PathBuf,
    /// The question file (GSM8k-Aug lines `question||steps #### answer`, or GSM8K JSONL).
    #[arg(long)]
    pub questions: PathBuf,
    /// `icot`, `icot_nl` or `gsm8k`.
    #[arg(long, default_value = "icot")]
    pub format: String,
    /// Output directory (same as `--output-dir`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// At most this many questions.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Paths per question.
    #[arg(long, default_value_t = 8)]
    pub paths: usize,
    /// Noise standard deviation on each thought.
    #[arg(long, default_value_t = 1.4)]
    pub sigma: f32,
    /// Scale σ by each thought's RMS.
    #[arg(long)]
    pub relative_sigma: bool,
    /// Monte-Carlo continuations per step prefix (per-step labels; 0 = final-answer labels only).
    #[arg(long, default_value_t = 0)]
    pub mc_rollouts: usize,
    /// Seed of the noise.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Questions per shard.
    #[arg(long, default_value_t = 100)]
    pub questions_per_shard: usize,
}

impl CollectArgs {
    /// The sampling settings.
    pub fn sampling(&self) -> SamplingConfig {
        SamplingConfig {
            paths_per_question: self.paths,
            sigma: self.sigma,
            relative_sigma: self.relative_sigma,
            mc_rollouts: self.mc_rollouts,
            seed: self.seed,
            questions_per_shard: self.questions_per_shard,
            ..SamplingConfig::default()
        }
    }

    /// Collects on `--device` (default cpu).
    pub fn run(self) -> JobResult {
        let c = &self.common;
        let out = c.output(JOB, self.out.as_deref(), "--out (or --output-dir)")?;
        let format: DataFormat =
            serde_json::from_value(serde_json::Value::String(self.format.clone()))?;
        let uses = [Flag::Device, Flag::OutputDir, Flag::Quiet, Flag::DryRun];
        let inputs = (&self, &out, self.sampling());
        let Some(device) = c.start_on_device(JOB, &uses, &inputs)? else {
            return Ok(());
        };
        device.run(Job {
            args: self,
            format,
            out,
        })?
    }
}

struct Job {
    args: CollectArgs,
    format: DataFormat,
    out: PathBuf,
}

impl BackendJob for Job {
    type Output = JobResult;

    fn run<B: Backend>(self, device: B::Device) -> JobResult {
        let Job {
            args: a,
            format,
            out,
        } = self;
        let r = Reasoner::<B>::load(&a.reasoner, &a.questions, format, a.limit, &device)?;
        let inputs = CollectInputs {
            reasoner: &r.model,
            reasoner_dir: &a.reasoner,
            latent_steps: r.latent_steps,
            tokenizer: &r.tokenizer,
            examples: &r.examples,
            questions_file: &a.questions,
        };
        let stop = latent_core::train::StopFlag::ctrl_c()?;
        let meta = collect(&inputs, &a.sampling(), &out, !a.common.quiet, Some(&stop))?;
        if meta.questions < meta.questions_planned {
            println!(
                "stopped after {} of {} questions; run the same command to resume",
                meta.questions, meta.questions_planned
            );
        }
        println!("{}", serde_json::to_string_pretty(&meta)?);
        Ok(())
    }
}
