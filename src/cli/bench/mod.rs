//! `latent bench <job>`: the benchmarks of docs/performance.md, one JSON line each (on stdout;
//! nothing is written to disk).

use clap::Subcommand;
use latent_core::cli::JobResult;

pub mod codi_step;
pub mod data_parallel;
pub mod few_rows;
pub mod lm;
pub mod logprobs;

/// `latent bench <job>`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Throughput and memory of a randomly initialised causal LM (forward, train, generate).
    Lm(lm::LmArgs),
    /// Peak memory and time of per-token log-probabilities under autodiff (full against chunked).
    Logprobs(logprobs::LogprobsArgs),
    /// Time and peak memory of CODI training steps, with or without activation checkpointing.
    CodiStep(codi_step::CodiStepArgs),
    /// Decoding-step products: Flex's matmul against the cut across threads.
    FewRows(few_rows::FewRowsArgs),
    /// Data-parallel training throughput on one replica per `--devices` entry.
    DataParallel(data_parallel::DataParallelArgs),
}

impl Command {
    /// Runs the job.
    pub fn run(self) -> JobResult {
        match self {
            Command::Lm(args) => args.run(),
            Command::Logprobs(args) => args.run(),
            Command::CodiStep(args) => args.run(),
            Command::FewRows(args) => args.run(),
            Command::DataParallel(args) => args.run(),
        }
    }
}
