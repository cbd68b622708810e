//! Collects latent reasoning paths of a CODI reasoner for the latent reward model: per question,
//! one noise-free decoding and N decodings with Gaussian noise on the continuous thoughts, stored
//! as safetensors shards with a JSON metadata file (`docs/prm.md`). Re-running the same command
//! resumes after the last complete shard.
//!
//! ```text
//! cargo run --release --example prm_collect -- --reasoner runs/codi-experiment/codi/final_model \
//!     --questions runs/codi-experiment/data/train.txt --out runs/prm/paths-train --paths 8 --sigma 0.5 --relative-sigma
//! ```

use std::path::PathBuf;

use burn::prelude::*;
use clap::Parser;
use latent_codi::config::DataFormat;
use latent_core::{BackendJob, DeviceSpec};
use latent_prm::collect::{collect, CollectInputs, Reasoner, SamplingConfig};

#[derive(Parser, Debug)]
#[command(about = "Collect noisy latent paths of a CODI reasoner for the latent reward model")]
struct Args {
    /// A CODI checkpoint directory (`codi.json`, `model/`).
    #[arg(long)]
    reasoner: PathBuf,
    /// The question file (GSM8k-Aug lines `question||steps #### answer`, or GSM8K JSONL).
    #[arg(long)]
    questions: PathBuf,
    /// `icot`, `icot_nl` or `gsm8k`.
    #[arg(long, default_value = "icot")]
    format: String,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// At most this many questions.
    #[arg(long)]
    limit: Option<usize>,
    /// Paths per question.
    #[arg(long, default_value_t = 8)]
    paths: usize,
    /// Noise standard deviation on each thought.
    #[arg(long, default_value_t = 1.4)]
    sigma: f32,
    /// Scale σ by each thought's RMS.
    #[arg(long)]
    relative_sigma: bool,
    /// Monte-Carlo continuations per step prefix (per-step labels; 0 = final-answer labels only).
    #[arg(long, default_value_t = 0)]
    mc_rollouts: usize,
    /// Seed of the noise.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Questions per shard.
    #[arg(long, default_value_t = 100)]
    questions_per_shard: usize,
    /// `cpu` or `cuda[:N]`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

type Out = Result<(), Box<dyn std::error::Error>>;

struct Job(Args);

impl BackendJob for Job {
    type Output = Out;

    fn run<B: Backend>(self, device: B::Device) -> Out {
        let a = self.0;
        let format: DataFormat =
            serde_json::from_value(serde_json::Value::String(a.format.clone()))?;
        let r = Reasoner::<B>::load(&a.reasoner, &a.questions, format, a.limit, &device)?;
        let sampling = SamplingConfig {
            paths_per_question: a.paths,
            sigma: a.sigma,
            relative_sigma: a.relative_sigma,
            mc_rollouts: a.mc_rollouts,
            seed: a.seed,
            questions_per_shard: a.questions_per_shard,
            ..SamplingConfig::default()
        };
        let inputs = CollectInputs {
            reasoner: &r.model,
            reasoner_dir: &a.reasoner,
            latent_steps: r.latent_steps,
            tokenizer: &r.tokenizer,
            examples: &r.examples,
            questions_file: &a.questions,
        };
        let stop = latent_core::train::StopFlag::ctrl_c()?;
        let meta = collect(&inputs, &sampling, &a.out, !a.quiet, Some(&stop))?;
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

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Out {
    let args = Args::parse();
    let device: DeviceSpec = args.device.parse()?;
    device.run(Job(args))?
}
