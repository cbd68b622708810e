//! The jobs of this crate as `latent sgdd <job>` (and the examples that wrap them): each job is a
//! `clap` argument struct with the common flags ([`latent_core::cli::CommonArgs`]) and a `run`, and
//! calls a library function that takes the resolved config.

use clap::Subcommand;
use latent_core::cli::JobResult;

pub mod eval;
pub mod generate;
pub mod train;

/// `latent sgdd <job>`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train SGDD from a YAML config (configs/sgdd/*.yaml); writes checkpoints, `best/`, `final/`,
    /// `export/`, `metrics.jsonl` and `loss.png` under `train.out_dir`.
    Train(train::TrainArgs),
    /// Evaluate a trained model (EM, F1, BLEU, copy baseline); writes `metrics.json` and
    /// `samples.jsonl` to `--out` (default: the model directory).
    Eval(eval::EvalArgs),
    /// MaskGIT + CFG generation from the encoded `--text`s; prints each output and the timing.
    Generate(generate::GenerateArgs),
}

impl Command {
    /// Runs the job.
    pub fn run(self) -> JobResult {
        match self {
            Command::Train(args) => args.run(),
            Command::Eval(args) => args.run(),
            Command::Generate(args) => args.run(),
        }
    }
}
