//! The jobs of this crate as `latent codi <job>` (and the examples that wrap them): each job is a
//! `clap` argument struct with the common flags ([`latent_core::cli::CommonArgs`]) and a `run`, and
//! calls a library function that takes the resolved config.

use clap::Subcommand;
use latent_core::cli::JobResult;

pub mod eval;
pub mod experiment;
pub mod phase1;
pub mod phase2;
pub mod pipeline;
pub mod train;

/// `latent codi <job>`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train CODI / CoT-SFT / No-CoT-SFT from a YAML config (configs/codi/*.yaml), then evaluate;
    /// writes checkpoints, `final_model/`, `metrics.jsonl`, `loss.png` and `eval.json` under
    /// `training.output_dir`.
    Train(train::TrainArgs),
    /// Evaluate a saved CODI model (default `training.output_dir/final_model`): accuracy, tokens,
    /// latency, thought probing, hybrid decoding modes; writes `<model>/eval.json` (or
    /// `eval_hybrid.json`).
    Eval(eval::EvalArgs),
    /// Hybrid CODI Phase 1: step entropies of a CoT model and hybrid samples, written to one
    /// versioned JSON file (`--output_path`).
    Phase1(phase1::Phase1Args),
    /// Hybrid CODI Phase 2: hybrid training from a CODI model; writes checkpoints and a plain CODI
    /// `final_model/` with `hybrid.json` under `--output-dir`.
    Phase2(phase2::Phase2Args),
    /// The CPU pipeline: CoT-SFT → CODI → Phase 1 → Phase 2 → every decoding mode; writes every run,
    /// `results.md` and the plot under `--output-dir` (default runs/codi-hybrid).
    Pipeline(pipeline::PipelineArgs),
    /// The CPU CODI experiment: CoT-SFT, CODI, No-CoT-SFT; writes every run and `results.md` under
    /// `--output-dir` (default runs/codi-experiment).
    Experiment(experiment::ExperimentArgs),
}

impl Command {
    /// Runs the job.
    pub fn run(self) -> JobResult {
        match self {
            Command::Train(args) => args.run(),
            Command::Eval(args) => args.run(),
            Command::Phase1(args) => args.run(),
            Command::Phase2(args) => args.run(),
            Command::Pipeline(args) => args.run(),
            Command::Experiment(args) => args.run(),
        }
    }
}
