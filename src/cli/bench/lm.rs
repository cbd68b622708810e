//! `latent bench lm`: throughput and memory of a randomly initialised causal LM; prints one JSON line.
//!
//! ```text
//! cargo run --release --example bench_lm -- --config configs/bench/tiny.json \
//!     --batch 8 --seq 128 --steps 10 --mode forward|train [--device cpu|cuda[:N]] [--dtype f32|bf16]
//! cargo run --release --example bench_lm -- --config configs/bench/tiny.json \
//!     --mode generate --batch 1 --prompt-len 16 --new-tokens 64
//! ```
//! `train` = forward + next-token cross-entropy + backward + AdamW step. `generate` = greedy
//! decoding of exactly `--new-tokens` steps through the workspace's decoding loop (tokens/s),
//! then the same number of steps fed with vectors (the last hidden state, as a continuous thought)
//! from the same prompt, reporting the cost of a vector step against a token step. Timing excludes
//! `--warmup` runs. See docs/performance.md for recorded numbers and the PyTorch baseline
//! (`scripts/bench_torch.py`, same JSON fields).

use std::time::Instant;

use burn::backend::Autodiff;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{DType, Distribution};
use clap::ValueEnum;
use latent_core::cli::{CommonArgs, JobResult};
use latent_core::infer::{decode, DecodeConfig, DecodePolicy, Next, NextInputs, StepView, Stepper};
use latent_core::{
    parse_dtype, peak_rss_mb, BackendJob, CausalLm, DeviceSpec, LmInput, ModelConfig,
};

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
pub enum Mode {
    Forward,
    Train,
    Generate,
}

#[derive(clap::Args, Debug, Clone)]
pub struct LmArgs {
    /// The common flags (`--config`: a Hugging Face config.json, required; `--device`, `--dry-run` apply).
    #[command(flatten)]
    pub common: CommonArgs,
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    #[arg(long, default_value_t = 128)]
    pub seq: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    #[arg(long, value_enum, default_value_t = Mode::Forward)]
    pub mode: Mode,
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub dtype: DType,
    /// Prompt tokens (generate mode).
    #[arg(long, default_value_t = 16)]
    pub prompt_len: usize,
    /// New tokens (generate mode).
    #[arg(long, default_value_t = 64)]
    pub new_tokens: usize,
}

struct Bench {
    args: LmArgs,
    config: ModelConfig,
    device: DeviceSpec,
}

/// Random token ids `[batch, seq]`.
fn random_ids<B: Backend>(args: &LmArgs, vocab: usize, device: &B::Device) -> Tensor<B, 2, Int> {
    Tensor::<B, 2>::random(
        [args.batch, args.seq],
        Distribution::Uniform(0.0, vocab as f64),
        device,
    )
    .int()
}

fn forward_steps<B: Backend>(model: &CausalLm<B>, args: &LmArgs, device: &B::Device) -> f64 {
    let vocab = model.config().vocab_size;
    let mut timed = 0.0;
    for step in 0..args.warmup + args.steps {
        let ids = random_ids::<B>(args, vocab, device);
        let start = Instant::now();
        let logits = model.forward(LmInput::ids(ids)).expect("forward").logits;
        let _ = logits.slice([0..1, 0..1, 0..1]).into_data();
        if step >= args.warmup {
            timed += start.elapsed().as_secs_f64();
        }
    }
    timed
}

fn train_steps<B: AutodiffBackend>(
    mut model: CausalLm<B>,
    args: &LmArgs,
    device: &B::Device,
) -> f64 {
    let vocab = model.config().vocab_size;
    let mut optim = AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .with_weight_decay(0.01)
        .init();
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let (b, s) = (args.batch, args.seq);
    let mut timed = 0.0;
    for step in 0..args.warmup + args.steps {
        let ids = random_ids::<B>(args, vocab, device);
        let start = Instant::now();
        let logits = model
            .forward(LmInput::ids(ids.clone()))
            .expect("forward")
            .logits;
        let logits = logits.slice([0..b, 0..s - 1]).reshape([b * (s - 1), vocab]);
        let targets = ids.slice([0..b, 1..s]).reshape([b * (s - 1)]);
        let loss = loss_fn.forward(logits, targets);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-4, model, grads);
        let _ = model.norm.weight.val().narrow(0, 0, 1).into_data();
        if step >= args.warmup {
            timed += start.elapsed().as_secs_f64();
        }
    }
    timed
}

/// Feeds `steps` greedy tokens or `steps` vectors (the last hidden state) through the decoding loop.
struct Feed {
    steps: usize,
    vectors: bool,
}

impl<B: Backend> DecodePolicy<B> for Feed {
    fn next(&mut self, view: &mut StepView<'_, B>) -> latent_core::Result<NextInputs<B>> {
        let n = view.len();
        Ok(if view.step() == self.steps {
            NextInputs::tokens(vec![Next::Stop; n])
        } else if self.vectors {
            NextInputs::vectors(vec![Next::Thought; n], view.hidden())
        } else {
            NextInputs::tokens((0..n).map(|i| Next::Write(view.argmax(i))).collect())
        })
    }
}

/// Seconds of the prefill and of `new_tokens` decoding steps after it, feeding tokens (greedy) or
/// vectors.
fn decode_seconds<B: Backend>(
    model: &CausalLm<B>,
    args: &LmArgs,
    prompts: &[Vec<u32>],
    vectors: bool,
) -> (f64, f64) {
    let mut stepper = Stepper::new(model, prompts.len(), args.prompt_len + args.new_tokens);
    let start = Instant::now();
    let first = stepper.prefill_ids(prompts, 0).expect("prefill");
    let _ = first.logits.clone().slice([0..1, 0..1]).into_data();
    let prefill = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut policy = Feed {
        steps: args.new_tokens,
        vectors,
    };
    let config = DecodeConfig {
        max_new_tokens: usize::MAX,
        ..DecodeConfig::default()
    };
    let out = decode(stepper, first, &mut policy, &config, None).expect("decoding");
    assert_eq!(out.steps, args.new_tokens);
    (prefill, start.elapsed().as_secs_f64())
}

fn generate_report<B: Backend>(model: &CausalLm<B>, args: &LmArgs) -> serde_json::Value {
    let vocab = model.config().vocab_size as u32;
    let prompts: Vec<Vec<u32>> = (0..args.batch)
        .map(|b| {
            (0..args.prompt_len)
                .map(|i| ((b * 7919 + i * 104729) as u32) % vocab)
                .collect()
        })
        .collect();
    let (mut prefill, mut tokens, mut vectors) = (0.0, 0.0, 0.0);
    for run in 0..args.warmup + args.steps {
        let (p, t) = decode_seconds(model, args, &prompts, false);
        let (_, v) = decode_seconds(model, args, &prompts, true);
        if run >= args.warmup {
            prefill += p;
            tokens += t;
            vectors += v;
        }
    }
    let steps = (args.steps * args.new_tokens) as f64;
    serde_json::json!({
        "prompt_len": args.prompt_len,
        "new_tokens": args.new_tokens,
        "seconds": tokens,
        "tokens_per_s": args.batch as f64 * steps / tokens,
        "prefill_ms": 1000.0 * prefill / args.steps as f64,
        "ms_per_token_step": 1000.0 * tokens / steps,
        "ms_per_vector_step": 1000.0 * vectors / steps,
        "vector_over_token_step": vectors / tokens,
    })
}

impl BackendJob for Bench {
    type Output = serde_json::Value;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        let Bench {
            args,
            config,
            device: spec,
        } = self;
        B::seed(&device, 0);
        let seconds = match args.mode {
            Mode::Forward => {
                let model = CausalLm::<B>::new(&config, &device).cast_params(args.dtype);
                forward_steps(&model, &args, &device)
            }
            Mode::Train => {
                let model = CausalLm::<Autodiff<B>>::new(&config, &device).cast_params(args.dtype);
                train_steps(model, &args, &device)
            }
            Mode::Generate => 0.0,
        };
        let tokens = (args.batch * args.seq * args.steps) as f64;
        let mut report = serde_json::json!({
            "bench": "lm",
            "impl": "latent-core (burn 0.21)",
            "config": args.common.config,
            "model_type": config.raw.get("model_type"),
            "parameters": config.num_parameters(),
            "mode": format!("{:?}", args.mode).to_lowercase(),
            "device": spec.to_string(),
            "dtype": format!("{:?}", args.dtype),
            "batch": args.batch,
            "seq": args.seq,
            "steps": args.steps,
            "seconds": seconds,
            "tokens_per_s": tokens / seconds,
            "ms_per_step": 1000.0 * seconds / args.steps as f64,
            "peak_rss_mb": null,
        });
        if args.mode == Mode::Generate {
            let model = CausalLm::<B>::new(&config, &device).cast_params(args.dtype);
            let extra = generate_report(&model, &args);
            let map = report.as_object_mut().expect("object");
            map.remove("seq");
            for (k, v) in extra.as_object().expect("object") {
                map.insert(k.clone(), v.clone());
            }
        }
        report["peak_rss_mb"] = serde_json::json!(peak_rss_mb());
        report
    }
}

const JOB: &str = "latent bench lm";

impl LmArgs {
    /// Builds the model from `--config` on `--device` (default cpu) and prints the JSON line.
    pub fn run(self) -> JobResult {
        let (config, uses) = super::model_config(&self.common, JOB)?;
        let inputs = (&self, config.num_parameters());
        let Some(device) = self.common.start_on_device(JOB, &uses, &inputs)? else {
            return Ok(());
        };
        let report = device.run(Bench {
            args: self,
            config,
            device,
        })?;
        println!("{report}");
        Ok(())
    }
}
