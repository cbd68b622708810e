//! `latent bench <job>`: the benchmarks of docs/performance.md, one JSON line each (on stdout;
//! nothing is written to disk).

use clap::Subcommand;
use latent_core::cli::{CommonArgs, Flag, JobResult};
use latent_core::ModelConfig;

pub mod codi_step;
pub mod data_parallel;
pub mod few_rows;
pub mod lm;
pub mod logprobs;

/// `latent bench <job>`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Throughput and memory of a randomly initialised causal LM (forward, train, generate).
    ///
    /// Throughput and memory of a randomly initialised causal LM built from --config (a Hugging
    /// Face config.json); prints one JSON line (tokens_per_s, peak_rss_mb, ...), writes nothing.
    /// train = forward + next-token cross-entropy + backward + AdamW step. generate = greedy
    /// decoding of exactly --new-tokens steps through the decoding loop, then the same number of
    /// steps fed with vectors, reporting the cost of a vector step against a token step. Timing
    /// excludes --warmup runs (docs/performance.md). --dry-run prints the inputs and the parameter
    /// count.
    Lm(lm::LmArgs),
    /// Peak memory and time of per-token log-probabilities under autodiff (full against chunked).
    ///
    /// Peak memory and time of per-token log-probabilities under autodiff: the full-logits path
    /// ([batch, seq, vocab] logits, log-softmax, gather, backward) against the chunked helper
    /// (CausalLm::logprob_loss), on random weights from --config (a Hugging Face config.json).
    /// Prints one JSON line, writes nothing; run each mode in its own process, since the peak
    /// resident set is per process (docs/performance.md). --dry-run prints the inputs.
    Logprobs(logprobs::LogprobsArgs),
    /// Time and peak memory of CODI training steps, with or without activation checkpointing.
    ///
    /// Time and peak memory of CODI training steps on a randomly initialised model (built from the
    /// run config's model.config: nothing is downloaded), with or without activation checkpointing;
    /// every step trains on the same synthetic micro-batch through the shared training loop. Prints
    /// one JSON line, writes nothing; peak RSS is the process's, so run one process per mode.
    /// --dry-run prints the resolved config.
    CodiStep(codi_step::CodiStepArgs),
    /// Decoding-step products: Flex's matmul against the cut across threads.
    ///
    /// Times the few-rows product of latent_core::model::few_rows_matmul against Flex's own matmul
    /// on decoding-step shapes, with cold weights (--copies distinct weights used in turn); prints
    /// one JSON line per shape, writes nothing (docs/performance.md). --dry-run prints the inputs.
    FewRows(few_rows::FewRowsArgs),
    /// Data-parallel training throughput on one replica per `--devices` entry.
    ///
    /// Data-parallel training throughput: next-token cross-entropy on a randomly initialised causal
    /// LM (from --config, a Hugging Face config.json) through the shared loop on one replica per
    /// --devices entry; --batch is the global micro-batch (split across the replicas). Prints one
    /// JSON line (wall time of the timed updates after --warmup untimed ones, tokens/s, the final
    /// loss and a checksum of the first replica's parameters), writes nothing. --dry-run prints the
    /// inputs.
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

/// The model config (`--config`, a Hugging Face config.json) of a benchmark on one device, and the
/// common flags such a benchmark uses.
fn model_config(
    common: &CommonArgs,
    job: &str,
) -> Result<(ModelConfig, [Flag; 3]), Box<dyn std::error::Error>> {
    let uses = [Flag::Config, Flag::Device, Flag::DryRun];
    common.accept(job, &uses)?;
    Ok((ModelConfig::from_file(common.config(job)?)?, uses))
}
