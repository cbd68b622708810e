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
    ///
    /// Train SGDD on the shared training loop from a YAML or JSON run config (--config
    /// configs/sgdd/*.yaml). Writes checkpoints (checkpoint-N, best, final), export/,
    /// metrics.jsonl, training.log, training_stats.json and loss.png under train.out_dir
    /// (--output-dir) and prints a JSON summary. --resume DIR with a checkpoint of the same task
    /// continues that run exactly; with one of the other task (phase 1 → phase 2) it takes its
    /// weights and starts a fresh optimizer; --resume alone takes the newest checkpoint in
    /// train.out_dir. --devices cpu,cpu (or cuda:0,cuda:1) trains one data-parallel replica per
    /// device. --dry-run prints the resolved config, the parameter counts (encoder frozen, decoder
    /// trainable) and the updates per epoch, without training.
    Train(latent_core::cli::CommonArgs),
    /// Evaluate a trained model (EM, F1, BLEU, baselines incl. retrieval); writes `metrics.json` and
    /// `samples.jsonl` to `--out` (default: the model directory).
    ///
    /// Evaluates a trained SGDD model on its test data: masked-CE loss, the weighted-bound
    /// perplexity, exact match, token F1, BLEU-4 (DiffuSeq sentence protocol and sacreBLEU corpus
    /// BLEU), the cosine between the re-encoded output and the input; for QQP also the copy-source
    /// baseline, BLEU against the source and the exact-copy rate; beside the model the
    /// copy-nothing, unigram and nearest-neighbour retrieval baselines on the same pairs
    /// (retrieving from the run's training pairs; not with --on-train). Prints the metrics as JSON and
    /// writes metrics.json and samples.jsonl to --out (or --output-dir; default: the model
    /// directory). --set overrides the run's config (data, decode; model.* changes the architecture
    /// built). --dry-run prints the inputs.
    Eval(eval::EvalArgs),
    /// MaskGIT + CFG generation from the encoded `--text`s; prints each output and the timing.
    ///
    /// Encodes texts with the model's frozen encoder and decodes them with MaskGIT + CFG; prints
    /// each output and one JSON line with the decoding time (batch of all --text's, or --repeat
    /// copies for latency runs). The time covers MaskGIT decoding (and correction rounds when
    /// asked), not the initial encoding. Writes nothing. --set overrides the run's config
    /// (decode.*); --dry-run prints the inputs.
    Generate(generate::GenerateArgs),
}

impl Command {
    /// Runs the job.
    pub fn run(self) -> JobResult {
        match self {
            Command::Train(args) => train::run(args),
            Command::Eval(args) => args.run(),
            Command::Generate(args) => args.run(),
        }
    }
}
