//! `latent bench data-parallel`: data-parallel training throughput: next-token cross-entropy on a randomly initialised causal LM
//! through the shared loop on one replica per `--devices` entry; prints one JSON line.
//!
//! ```text
//! cargo run --release --example bench_data_parallel -- --config configs/bench/tiny.json \
//!     --devices cpu --batch 8 --seq 64 --updates 6
//! cargo run --release --example bench_data_parallel -- --config configs/bench/tiny.json \
//!     --devices cpu,cpu --batch 8 --seq 64 --updates 6
//! cargo run --release --features cuda --example bench_data_parallel -- \
//!     --config configs/bench/tiny.json --devices cuda:0,cuda:1 --batch 32 --seq 128
//! ```
//! `--batch` is the global micro-batch (split across the replicas). The JSON line holds the wall
//! time of the timed updates (after `--warmup` untimed ones), tokens/s, and the final loss and
//! a checksum of the first replica's parameters, to compare runs with different device lists.

use std::time::Instant;

use burn::backend::Autodiff;
use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use latent_core::cli::{CommonArgs, Flag, JobResult};
use latent_core::train::{
    train_data_parallel, AdamWSettings, DataParallel, GroupedOptimizer, LoopConfig,
    ParamGroupConfig, ScheduleKind, StepIndex, StepLoss, TrainStep,
};
use latent_core::{seed_backend, CausalLm, DeviceList, DevicesJob, LmInput, ModelConfig};

#[derive(clap::Args, Debug, Clone)]
pub struct DataParallelArgs {
    /// The common flags (`--config`: a Hugging Face config.json, required; `--devices` (default cpu), `--dry-run` apply).
    #[command(flatten)]
    pub common: CommonArgs,
    /// Global micro-batch (sequences).
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    #[arg(long, default_value_t = 64)]
    pub seq: usize,
    /// Timed updates.
    #[arg(long, default_value_t = 6)]
    pub updates: usize,
    /// Untimed updates first.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
}

/// Next-token cross-entropy on `[batch, seq]` ids (a mean over the batch's predicted tokens).
struct NextToken;

impl<B: AutodiffBackend> TrainStep<B, CausalLm<B>> for NextToken {
    type Batch = Tensor<B, 2, Int>;

    fn loss(
        &mut self,
        model: &CausalLm<B>,
        ids: &Self::Batch,
        _at: StepIndex,
    ) -> latent_core::Result<StepLoss<B>> {
        let [b, s] = ids.dims();
        let logits = model.forward(LmInput::ids(ids.clone()))?.logits;
        let v = logits.dims()[2];
        let logits = logits.slice([0..b, 0..s - 1]).reshape([b * (s - 1), v]);
        let targets = ids.clone().slice([0..b, 1..s]).reshape([b * (s - 1)]);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits, targets);
        Ok(StepLoss {
            loss,
            terms: Vec::new(),
        })
    }
}

/// Sum of every parameter (f64), a checksum to compare runs.
fn checksum<B: Backend, M: Module<B>>(model: &M) -> f64 {
    struct Sum(f64);
    impl<B: Backend> ModuleVisitor<B> for Sum {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let s: f64 = param.val().sum().into_scalar().elem();
            self.0 += s;
        }
    }
    let mut sum = Sum(0.0);
    model.visit(&mut sum);
    sum.0
}

struct Job(DataParallelArgs, ModelConfig, String);

impl DevicesJob for Job {
    type Output = Result<serde_json::Value, Box<dyn std::error::Error>>;

    fn run<B: Backend>(self, devices: Vec<B::Device>) -> Self::Output {
        type A<B> = Autodiff<B>;
        let Job(args, config, device_list) = self;
        let device = devices[0].clone();
        let (model, batches) = {
            let _rng = seed_backend::<A<B>>(&device, 7);
            // Initialised here, under the seed (Burn initialises lazily).
            let model = CausalLm::<A<B>>::new(&config, &device).fork(&device);
            let total = args.warmup + args.updates;
            let ids: Vec<Tensor<A<B>, 2, Int>> = (0..total)
                .map(|_| {
                    Tensor::<A<B>, 2>::random(
                        [args.batch, args.seq],
                        burn::tensor::Distribution::Uniform(0.0, config.vocab_size as f64),
                        &device,
                    )
                    .int()
                })
                .collect();
            (model, ids)
        };
        let groups = [ParamGroupConfig {
            name: "all".into(),
            prefixes: Vec::new(),
            lr: 1e-3,
            weight_decay: 0.0,
            schedule: ScheduleKind::Constant,
            warmup_ratio: 0.0,
        }];
        let total = batches.len();
        let mut optim = GroupedOptimizer::new(&model, &groups, &AdamWSettings::default(), total)?;
        let loop_config = LoopConfig {
            epochs: 1,
            accumulation: 1,
            max_grad_norm: Some(1.0),
            ..Default::default()
        };
        let mut timed_from = None;
        let mut last_loss = f64::NAN;
        let started = Instant::now();
        let (model, _) = train_data_parallel(
            &DataParallel::local(devices.clone()),
            model,
            |_| NextToken,
            |_| batches.clone(),
            &mut optim,
            &loop_config,
            |_, _, record, _| {
                if record.update + 1 == args.warmup {
                    timed_from = Some(Instant::now());
                }
                last_loss = record.loss;
                Ok(())
            },
        )?;
        let end = Instant::now();
        let timed = end - timed_from.unwrap_or(started);
        let tokens = (args.updates * args.batch * args.seq) as f64;
        Ok(serde_json::json!({
            "devices": device_list,
            "replicas": devices.len(),
            "batch": args.batch,
            "seq": args.seq,
            "updates": args.updates,
            "seconds": timed.as_secs_f64(),
            "tokens_per_s": tokens / timed.as_secs_f64(),
            "final_loss": last_loss,
            "param_checksum": checksum(&model),
        }))
    }
}

const JOB: &str = "latent bench data-parallel";

impl DataParallelArgs {
    /// Builds the model from `--config`, trains on `--devices` (default cpu) and prints the JSON
    /// line.
    pub fn run(self) -> JobResult {
        let c = &self.common;
        c.accept(JOB, &[Flag::Config, Flag::Devices, Flag::DryRun])?;
        let config = ModelConfig::from_file(c.config(JOB)?)?;
        let list = c.device_list("cpu").to_string();
        let devices: DeviceList = list.parse()?;
        if c.dry_run {
            println!("{self:#?}");
            return Ok(());
        }
        let line = devices.run(Job(self, config, list))??;
        println!("{line}");
        Ok(())
    }
}
