//! `latent bench logprobs`: peak memory and time of per-token log-probabilities under autodiff: the full-logits path
//! (`[batch, seq, vocab]` logits, log-softmax, gather, backward) against the chunked helper
//! (`CausalLm::logprob_loss`). Prints one JSON line; run each mode in its own process, since the
//! peak resident set is per process.
//!
//! ```text
//! cargo run --release --example bench_logprobs -- --config configs/bench/qwen2.5-0.5b-2layers.json \
//!     --batch 4 --seq 1024 --mode full|chunked|body [--chunk 64] [--frozen-head] [--device cpu|cuda[:N]]
//! ```
//! The loss is GRPO's shape (ratio · advantage, mean over tokens); the body is random weights from
//! the config. See docs/performance.md for recorded numbers.

use std::time::Instant;

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Distribution;
use clap::ValueEnum;
use latent_core::cli::{CommonArgs, JobResult};
use latent_core::model::LogprobOptions;
use latent_core::{peak_rss_mb, seed_backend, BackendJob, CausalLm, LmInput, ModelConfig};

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
pub enum Mode {
    /// All logits at once.
    Full,
    /// `logprob_loss`, `--chunk` positions at a time.
    Chunked,
    /// The body alone (a loss of the final hidden states, no head): the floor of both.
    Body,
}

#[derive(clap::Args, Debug, Clone)]
pub struct LogprobsArgs {
    /// The common flags (`--config`: a Hugging Face config.json, required; `--device`, `--dry-run` apply).
    #[command(flatten)]
    pub common: CommonArgs,
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    #[arg(long, default_value_t = 1024)]
    pub seq: usize,
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// Positions per chunk (chunked mode).
    #[arg(long, default_value_t = 64)]
    pub chunk: usize,
    /// Freeze the embedding and the head, as LoRA training does (only the body gets gradients).
    #[arg(long)]
    pub frozen_head: bool,
}

struct Bench(LogprobsArgs, ModelConfig);

/// GRPO's per-token term with advantage 1, mean over every token.
fn ratio_loss<B: Backend>(logp: Tensor<B, 2>) -> Tensor<B, 1> {
    (logp.clone() - logp.detach()).exp().neg().mean()
}

fn run<B: AutodiffBackend>(
    args: &LogprobsArgs,
    config: &ModelConfig,
    device: &B::Device,
) -> serde_json::Value {
    let _rng = seed_backend::<B>(device, 0);
    let mut model = CausalLm::<B>::new(config, device);
    if args.frozen_head {
        model.embed_tokens = model.embed_tokens.clone().no_grad();
        model.lm_head = model.lm_head.clone().map(|h| h.no_grad());
    }
    let vocab = config.vocab_size;
    let ids = Tensor::<B, 2>::random(
        [args.batch, args.seq],
        Distribution::Uniform(0.0, vocab as f64),
        device,
    )
    .int();
    let targets = Tensor::<B, 2>::random(
        [args.batch, args.seq],
        Distribution::Uniform(0.0, vocab as f64),
        device,
    )
    .int();
    let before = peak_rss_mb();
    let start = Instant::now();
    let loss = match args.mode {
        Mode::Full => {
            let logits = model.forward(LmInput::ids(ids)).expect("forward").logits;
            ratio_loss(
                log_softmax(logits, 2)
                    .gather(2, targets.unsqueeze_dim(2))
                    .squeeze_dim(2),
            )
        }
        Mode::Chunked => {
            let hidden = model
                .forward_hidden(LmInput::ids(ids))
                .expect("forward")
                .last_hidden;
            let options = LogprobOptions {
                chunk: args.chunk,
                temperature: 1.0,
            };
            model
                .logprob_loss(hidden, targets, options, |logp| Ok((ratio_loss(logp), ())))
                .expect("log-probs")
                .loss
        }
        Mode::Body => {
            let hidden = model
                .forward_hidden(LmInput::ids(ids))
                .expect("forward")
                .last_hidden;
            let _ = targets;
            hidden.mean()
        }
    };
    let grads = loss.backward();
    let g = model.norm.weight.val().grad(&grads).expect("gradient");
    let _ = g.into_data();
    serde_json::json!({
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "batch": args.batch,
        "seq": args.seq,
        "vocab": vocab,
        "hidden": config.hidden_size,
        "chunk": (args.mode == Mode::Chunked).then_some(args.chunk),
        "frozen_head": args.frozen_head,
        "seconds": start.elapsed().as_secs_f64(),
        "rss_before_mb": before,
        "peak_rss_mb": peak_rss_mb(),
        "logits_mb": (args.batch * args.seq * vocab * 4) as f64 / 1048576.0,
    })
}

impl BackendJob for Bench {
    type Output = serde_json::Value;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        run::<Autodiff<B>>(&self.0, &self.1, &device)
    }
}

const JOB: &str = "latent bench logprobs";

impl LogprobsArgs {
    /// Builds the model from `--config` on `--device` (default cpu) and prints the JSON line.
    pub fn run(self) -> JobResult {
        let (config, uses) = super::model_config(&self.common, JOB)?;
        let Some(device) = self.common.start_on_device(JOB, &uses, &self)? else {
            return Ok(());
        };
        let line = device.run(Bench(self, config))?;
        println!("{line}");
        Ok(())
    }
}
