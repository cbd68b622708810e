//! Greedy pass@1 of a trained policy with HRPO's protocol (the training prompts' chat template and
//! system prompt, arg-max decoding with mixing on for hybrid policies, at most
//! `eval.max_new_tokens`), on the config's evaluation set (GSM8K test by default).
//!
//! ```text
//! cargo run --release --example hrpo_eval -- --config configs/grpo/hrpo-qwen2.5-1.5b-gsm8k.yaml \
//!     --policy runs/hrpo-qwen2.5-1.5b-gsm8k/final [--set eval.max_new_tokens=512] [--out eval.json]
//! ```
//! Without `--policy` the base model is evaluated (no mixing).

use std::path::PathBuf;

use burn::prelude::*;
use clap::Parser;
use grpo_rl::eval::{evaluate, EvalSettings};
use grpo_rl::model::{load_base, load_policy};
use grpo_rl::prompt::PromptBuilder;
use grpo_rl::{GrpoError, GrpoRunConfig};
use latent_core::latent::ThinkingLm;
use latent_core::{parse_dtype, BackendJob, DeviceSpec};

#[derive(Parser, Debug)]
#[command(about = "Greedy pass@1 of a GRPO / HRPO policy")]
struct Args {
    /// The run config the policy was trained with.
    #[arg(long)]
    config: PathBuf,
    /// The saved policy (`<output_dir>/final`); omitted: the base model.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Overrides `dotted.key=value` (repeatable).
    #[arg(long = "set")]
    overrides: Vec<String>,
    /// Where to write the records (default: next to the policy, or `eval.json`).
    #[arg(long)]
    out: Option<PathBuf>,
}

type Out = Result<(), Box<dyn std::error::Error>>;

struct Job {
    args: Args,
    config: GrpoRunConfig,
}

impl BackendJob for Job {
    type Output = Out;

    fn run<B: Backend>(self, device: B::Device) -> Out {
        let Job { args, config } = self;
        let dtype = parse_dtype(&config.model.dtype)?;
        let (base, tokenizer, tokenizer_path, template) = load_base::<B>(&config, &device)?;
        let eos = grpo_rl::model::eos_ids(&config, &base, template.as_ref(), &tokenizer)?;
        let (model, mix) = match &args.policy {
            Some(dir) => {
                let (model, meta) = load_policy(base, dir, dtype)?;
                (model, meta.hrpo)
            }
            None => (ThinkingLm::without_thinking(base), false),
        };
        let eval = config.data.eval.as_ref().ok_or_else(|| GrpoError::Config {
            path: args.config.clone(),
            key: "data.eval".into(),
            reason: "no evaluation set".into(),
        })?;
        let builder = PromptBuilder::new(
            tokenizer.clone(),
            tokenizer_path,
            template,
            &config.model.system_prompt,
        );
        let prompts = builder.load(eval, config.data.format, config.data.max_eval_samples)?;
        let settings = EvalSettings {
            batch_size: config.eval.batch_size,
            max_new_tokens: config.eval.max_new_tokens,
            mix,
            answer_delimiter: config.hrpo.answer_delimiter.clone(),
            pad_token_id: config.model.pad_token_id.unwrap_or(eos[0]),
            stop: None,
            eos_token_ids: eos,
        };
        let summary = evaluate(&model, &tokenizer, &prompts, &settings, |done| {
            eprint!("\r{done}/{} prompts", prompts.len())
        })?;
        eprintln!();
        let out = args.out.clone().unwrap_or_else(|| match &args.policy {
            Some(dir) => dir.join("eval.json"),
            None => PathBuf::from("eval.json"),
        });
        std::fs::write(&out, serde_json::to_string_pretty(&summary)?)?;
        println!(
            "greedy pass@1: {:.1}% ± {:.1} ({} of {}), {:.1} tokens, {:.1} mixed positions per completion; records in {}",
            100.0 * summary.accuracy,
            100.0 * summary.standard_error,
            summary.correct,
            summary.examples,
            summary.mean_tokens,
            summary.mean_thinking_tokens,
            out.display()
        );
        Ok(())
    }
}

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Out {
    let args = Args::parse();
    let config = GrpoRunConfig::load(&args.config, &args.overrides)?;
    let device: DeviceSpec = config.training.device.parse()?;
    device.run(Job { args, config })?
}
