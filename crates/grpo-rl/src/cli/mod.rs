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
    ///
    /// Train a policy with GRPO / HRPO from a YAML config (--config configs/grpo/*.yaml), then
    /// evaluate it (greedy pass@1) when the config names an evaluation set. Writes checkpoints,
    /// final/ (PEFT adapter), metrics.jsonl, training.log and loss.png under training.output_dir,
    /// and final/eval.json. --dry-run prints the resolved config, the trainable parameters per
    /// group and the optimizer updates per epoch, allocating nothing. --resume continues from the
    /// newest checkpoint in training.output_dir; Ctrl-C saves one and stops. --devices cpu,cpu (or
    /// cuda:0,cuda:1) trains one data-parallel replica per device.
    Train(latent_core::cli::TrainEvalArgs),
    /// Greedy pass@1 of a saved policy (or the base model) with HRPO's protocol; writes the records
    /// to `--out` (default: `<policy>/eval.json`).
    ///
    /// Greedy pass@1 of a trained policy with HRPO's protocol (the training prompts' chat template
    /// and system prompt, arg-max decoding with mixing on for hybrid policies, at most
    /// eval.max_new_tokens) on the config's evaluation set (--config: the run config the policy was
    /// trained with). Without --policy the base model is evaluated (no mixing). Prints one summary
    /// line; writes the records to --out, else <--output-dir>/eval.json, else <policy>/eval.json,
    /// else ./eval.json. --dry-run prints the resolved config and the inputs.
    Eval(eval::EvalArgs),
    /// One forward pass of a base model + HRPO adapter with thinking states mixed in; writes
    /// `logits` `[1, seq, vocab]` to `--out` (safetensors).
    ///
    /// Forward pass of a base model + HRPO adapter with thinking states mixed in. ADAPTER_DIR is a
    /// PEFT adapter directory (adapter_config.json, adapter_model.safetensors) with LoRA on the
    /// base model's projections and HRPO's residual (thinking_residual_gate_r,
    /// thinking_residual_gate_i, thinking_residual_Lambda) in modules_to_save. --thinking-states
    /// holds thinking_states [seq, hidden] (f32; rows where the mask is 0 are ignored). Where the
    /// mask is 1 the input is ThinkingResidual(E[id], h), elsewhere the token embedding. Writes
    /// logits [1, seq, vocab] (f32) to --out and prints `wrote logits to OUT`. --dry-run prints the
    /// inputs and stops.
    Forward(forward::ForwardArgs),
    /// The CPU demo: CoT-SFT warm start, then GRPO, HRPO and HRPO + projection; writes runs and
    /// `results.md` under `--output-dir` (default runs/grpo-demo).
    ///
    /// The CPU-sized GRPO / HRPO demo: a tiny model warm-started with CoT-SFT on synthetic
    /// GSM8k-Aug-format arithmetic, then GRPO, HRPO and HRPO with the learned projection from the
    /// same checkpoint; prints the table of held-out greedy accuracy before and after and writes
    /// every run and results.md under --output-dir (default runs/grpo-demo). Embedded defaults;
    /// flags change them. --dry-run prints the settings and stops.
    Demo(demo::DemoArgs),
}

impl Command {
    /// Runs the job.
    pub fn run(self) -> JobResult {
        match self {
            Command::Train(args) => train::run(args),
            Command::Eval(args) => args.run(),
            Command::Forward(args) => args.run(),
            Command::Demo(args) => args.run(),
        }
    }
}
