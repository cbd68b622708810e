//! The jobs of this crate as `latent prm <job>` (and the examples that wrap them): each job is a
//! `clap` argument struct with the common flags ([`latent_core::cli::CommonArgs`]) and a `run`, and
//! calls a library function that takes the resolved config.

use clap::Subcommand;
use latent_core::cli::JobResult;

pub mod collect;
pub mod demo;
pub mod eval;
pub mod train;

/// `latent prm <job>`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Collect noisy latent paths of a CODI reasoner (safetensors shards + JSON metadata under
    /// `--out`; re-running resumes).
    Collect(collect::CollectArgs),
    /// Train the latent reward model from a YAML config (configs/prm/*.yaml); writes checkpoints,
    /// `final/`, `metrics.jsonl` and `loss.png` under `training.output_dir`.
    Train(train::TrainArgs),
    /// Best-of-N evaluation of a trained scorer on held-out paths; writes `results.json`,
    /// `results.md` and `best_of_n.png` under `--out`.
    Eval(eval::EvalArgs),
    /// The CPU demo: CODI reasoner, paths, scorer, best-of-N table; writes everything under
    /// `--output-dir` (default runs/prm-demo).
    Demo(demo::DemoArgs),
}

impl Command {
    /// Runs the job.
    pub fn run(self) -> JobResult {
        match self {
            Command::Collect(args) => args.run(),
            Command::Train(args) => args.run(),
            Command::Eval(args) => args.run(),
            Command::Demo(args) => args.run(),
        }
    }
}
