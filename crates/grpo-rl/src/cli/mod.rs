//! The jobs of this crate as `latent hrpo <job>` (and the examples that wrap them): each job is a
//! `clap` argument struct with the common flags ([`latent_core::cli::CommonArgs`]) and a `run`, and
//! calls a library function that takes the resolved config.

use clap::Subcommand;
use latent_core::cli::JobResult;

pub mod demo;
pub mod eval;
pub mod forward;
pub mod train;

/// `latent hrpo <job>`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a policy with GRPO / HRPO from a YAML config (configs/grpo/*.yaml), then greedy
    /// pass@1 on the config's evaluation set; writes checkpoints, `final/`, `metrics.jsonl`,
    /// `loss.png` and `final/eval.json` under `training.output_dir`.
    Train(train::TrainArgs),
    /// Greedy pass@1 of a saved policy (or the base model) with HRPO's protocol; writes the records
    /// to `--out` (default: `<policy>/eval.json`).
    Eval(eval::EvalArgs),
    /// One forward pass of a base model + HRPO adapter with thinking states mixed in; writes
    /// `logits` `[1, seq, vocab]` to `--out` (safetensors).
    Forward(forward::ForwardArgs),
    /// The CPU demo: CoT-SFT warm start, then GRPO, HRPO and HRPO + projection; writes runs and
    /// `results.md` under `--output-dir` (default runs/grpo-demo).
    Demo(demo::DemoArgs),
}

impl Command {
    /// Runs the job.
    pub fn run(self) -> JobResult {
        match self {
            Command::Train(args) => args.run(),
            Command::Eval(args) => args.run(),
            Command::Forward(args) => args.run(),
            Command::Demo(args) => args.run(),
        }
    }
}
