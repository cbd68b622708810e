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
    ///
    /// Collects latent reasoning paths of a CODI reasoner for the latent reward model: per
    /// question, one noise-free decoding and N decodings with Gaussian noise on the continuous
    /// thoughts, stored as safetensors shards with a JSON metadata file under --out (or
    /// --output-dir; docs/prm.md); prints the metadata. Re-running the same command resumes after
    /// the last complete shard. --dry-run prints the inputs and the sampling settings.
    Collect(collect::CollectArgs),
    /// Train the latent reward model from a YAML config (configs/prm/*.yaml); writes checkpoints,
    /// `final/`, `metrics.jsonl` and `loss.png` under `training.output_dir`.
    ///
    /// Train the latent reward model on collected latent paths from a YAML config (--config
    /// configs/prm/*.yaml). Writes checkpoints, best/, final/, metrics.jsonl, training.log and
    /// loss.png under training.output_dir and prints the report as JSON. --dry-run prints the
    /// resolved config and the parameter counts from config.json alone, allocating nothing.
    /// --resume DIR resumes from that checkpoint; --resume alone from the newest one in
    /// training.output_dir; Ctrl-C writes a checkpoint and stops. --devices cpu,cpu (or
    /// cuda:0,cuda:1) runs one data-parallel replica per device; without it the run uses
    /// training.device.
    Train(latent_core::cli::CommonArgs),
    /// Best-of-N evaluation of a trained scorer on held-out paths; writes `results.json`,
    /// `results.md` and `best_of_n.png` under `--out`.
    ///
    /// Evaluates a trained latent reward model on a held-out collection: score quality (MSE, MAE,
    /// AUROC) and best-of-N accuracy against greedy, random, majority vote, score-weighted vote and
    /// pass@N, with bootstrap error bars; prints the table and writes results.json, results.md and
    /// best_of_n.png under --out (or --output-dir). --dry-run prints the inputs.
    Eval(eval::EvalArgs),
    /// The CPU demo: CODI reasoner, paths, scorer, best-of-N table; writes everything under
    /// `--output-dir` (default runs/prm-demo).
    ///
    /// The CPU-sized latent reward model demo: the CODI experiment's model (trained first when
    /// --codi-experiment does not hold it), noisy latent paths on training and held-out questions,
    /// a scorer trained on them, and the best-of-N table (docs/prm.md). Writes everything under
    /// --output-dir (default runs/prm-demo). Embedded defaults; flags change them. --dry-run prints
    /// the settings and stops.
    Demo(demo::DemoArgs),
}

impl Command {
    /// Runs the job.
    pub fn run(self) -> JobResult {
        match self {
            Command::Collect(args) => args.run(),
            Command::Train(args) => train::run(args),
            Command::Eval(args) => args.run(),
            Command::Demo(args) => args.run(),
        }
    }
}
