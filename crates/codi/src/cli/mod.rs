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
    ///
    /// Train CODI (or the CoT-SFT / No-CoT-SFT baselines) from a YAML config (--config
    /// configs/codi/*.yaml), then evaluate the final model when the config names an evaluation set.
    /// Writes checkpoints, final_model/, metrics.jsonl, training.log, loss.png and eval.json under
    /// training.output_dir. --dry-run prints the resolved config, parameter counts and the records
    /// of the data files (no weights are loaded: the model is built from model.config). --resume
    /// continues from the newest checkpoint in training.output_dir; Ctrl-C saves one and stops.
    /// --devices cpu,cpu (or cuda:0,cuda:1) trains one data-parallel replica per device.
    Train(latent_core::cli::TrainEvalArgs),
    /// Evaluate a saved CODI model (default `training.output_dir/final_model`): accuracy, tokens,
    /// latency, thought probing, hybrid decoding modes; writes `<model>/eval.json` (or
    /// `eval_hybrid.json`).
    ///
    /// Evaluate a saved CODI / CoT-SFT / No-CoT-SFT model (default: training.output_dir/final_model
    /// of --config) on the config's data.eval: accuracy (last number, float equality), mean decoded
    /// tokens, latent steps, latency per question; with --probe N, the top tokens of each
    /// continuous thought of the first N questions. --model may also be a checkpoint directory of
    /// the reference PyTorch implementation (the config supplies what it does not record;
    /// docs/codi.md). --baseline_mode adaptive,explicit,latent,random,planned decodes with the
    /// hybrid controller or a baseline, one table row each (docs/codi-hybrid.md). Prints one
    /// summary line (or the table); writes the per-question results to --out, else <--output-dir or
    /// the model>/eval.json (eval_hybrid.json for hybrid modes). --dry-run prints the resolved
    /// config and the inputs.
    Eval(eval::EvalArgs),
    /// Hybrid CODI Phase 1: step entropies of a CoT model and hybrid samples, written to one
    /// versioned JSON file (`--output_path`).
    ///
    /// Phase 1 of hybrid CODI (docs/codi-hybrid.md): a CoT-capable saved model (a final_model
    /// directory of `latent codi train`, e.g. CoT-SFT or CODI) measures the entropy of every CoT
    /// step of GSM8k-Aug-format data and writes hybrid samples (entropy-guided / random / explicit)
    /// to one versioned JSON file (--output_path, or <--output-dir>/hybrid_training_data.json);
    /// prints summary statistics. --dry-run prints the settings and the number of problems.
    Phase1(phase1::Phase1Args),
    /// Hybrid CODI Phase 2: hybrid training from a CODI model; writes checkpoints and a plain CODI
    /// `final_model/` with `hybrid.json` under `--output-dir`.
    ///
    /// Phase 2 of hybrid CODI (docs/codi-hybrid.md): trains on the hybrid samples of Phase 1
    /// (--hybrid_data_path) with the plain CODI model, special ids, projection and forward, so the
    /// output final_model/ (with hybrid.json) evaluates in plain `latent codi eval` (and in hybrid
    /// mode with --baseline_mode). Writes checkpoints, logs, loss.png and final_model/ under
    /// --output-dir (--output_dir). --config optionally gives a run config (configs/codi/*.yaml)
    /// the flags override (default: the design document's Phase 2 defaults: 5 epochs, batch 4, lr
    /// 2e-5, warm-up 10 %). --resume continues from the newest checkpoint in the output directory.
    /// --devices cpu,cpu (or cuda:0,cuda:1) trains one data-parallel replica per device. --dry-run
    /// prints the resolved config, the hybrid samples and the updates per epoch.
    Phase2(phase2::Phase2Args),
    /// The CPU pipeline: CoT-SFT → CODI → Phase 1 → Phase 2 → every decoding mode; writes every run,
    /// `results.md` and the plot under `--output-dir` (default runs/codi-hybrid).
    ///
    /// The hybrid CODI pipeline at CPU size (the README's main job): synthetic GSM8k-Aug-format
    /// arithmetic, a tiny model trained with CoT-SFT, then CODI from it, Phase 1 hybrid data from
    /// the CoT-SFT model, Phase 2 from the CODI model, and every decoding mode of the Phase 2
    /// model. Prints the table and writes every run, results.md and a plot of accuracy against
    /// written tokens under --output-dir (default runs/codi-hybrid; docs/codi-hybrid.md). Embedded
    /// defaults; flags change them. --dry-run prints the settings and stops.
    Pipeline(pipeline::PipelineArgs),
    /// The CPU CODI experiment: CoT-SFT, CODI, No-CoT-SFT; writes every run and `results.md` under
    /// `--output-dir` (default runs/codi-experiment).
    ///
    /// The CPU-sized CODI experiment: synthetic GSM8k-Aug-format arithmetic, a tiny model trained
    /// with CoT-SFT, then CODI from it, and No-CoT-SFT with the same number of updates; prints the
    /// table of accuracy, decoded tokens and wall time and writes every run and results.md under
    /// --output-dir (default runs/codi-experiment). Embedded defaults; flags change them. --dry-run
    /// prints the settings and stops.
    Experiment(experiment::ExperimentArgs),
}

impl Command {
    /// Runs the job.
    pub fn run(self) -> JobResult {
        match self {
            Command::Train(args) => train::run(args),
            Command::Eval(args) => args.run(),
            Command::Phase1(args) => args.run(),
            Command::Phase2(args) => args.run(),
            Command::Pipeline(args) => args.run(),
            Command::Experiment(args) => args.run(),
        }
    }
}
