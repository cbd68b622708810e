//! Evaluates a trained SGDD model on its test data: masked-CE loss, the weighted-bound perplexity,
//! exact match, token F1, BLEU-4 (DiffuSeq sentence protocol and sacreBLEU corpus BLEU), the cosine
//! between the re-encoded output and the input; for QQP also the copy-source baseline, BLEU against
//! the source and the exact-copy rate; beside them the copy-nothing, unigram and nearest-neighbour
//! retrieval baselines on the same pairs (retrieving from the run's training pairs; not with
//! `--on-train`). Writes `metrics.json` and `samples.jsonl` to `--out`.
//!
//! ```text
//! cargo run --release --example sgdd_eval -- --model runs/sgdd/phase1/export [--limit 500] \
//!     [--set decode.cfg_scale=0] [--set data.test_file=...] [--on-train] [--out DIR]
//! ```

use std::path::PathBuf;

use burn::prelude::*;
use clap::Parser;
use latent_core::{BackendJob, DeviceSpec};
use sgdd_diffusion::baselines::baselines;
use sgdd_diffusion::config::Task;
use sgdd_diffusion::data::{split_pairs, test_pairs, Examples};
use sgdd_diffusion::eval::{eval_generation, eval_loss, write_samples};
use sgdd_diffusion::train::load_trained;

#[derive(Parser, Debug)]
#[command(about = "Evaluate a trained SGDD model")]
struct Args {
    /// Checkpoint or export directory (model.safetensors + config.json).
    #[arg(long)]
    model: PathBuf,
    /// Overrides of the run config `key.path=value` (data, decode; `model.*` changes the architecture built).
    #[arg(long = "set")]
    overrides: Vec<String>,
    /// Examples decoded (0 = all).
    #[arg(long, default_value_t = 0)]
    limit: usize,
    /// Evaluate on the run's training pairs instead of its test pairs (a memorisation check).
    #[arg(long)]
    on_train: bool,
    /// Output directory (default: the model directory).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

struct Eval(Args);

impl BackendJob for Eval {
    type Output = sgdd_diffusion::Result<()>;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        let args = self.0;
        let (config, encoder, model) = load_trained::<B>(&args.model, &args.overrides, &device)?;
        let out = args.out.clone().unwrap_or_else(|| args.model.clone());
        std::fs::create_dir_all(&out).map_err(|e| latent_core::CoreError::io(&out, e))?;
        let mut pairs = if args.on_train {
            split_pairs(&config)?.0
        } else {
            test_pairs(&config)?
        };
        if args.limit > 0 {
            pairs.truncate(args.limit);
        }
        let examples =
            Examples::build(pairs, &encoder, &config, Some(&out.join("cache")), &device)?;
        let loss = eval_loss(
            &model,
            &examples,
            config.train.eval_batch_size,
            config.train.seed ^ 0x5eed,
            None,
        )?;
        let paraphrase = config.task == Task::QqpParaphrase;
        let report = eval_generation(
            &model,
            &encoder,
            &examples,
            &config.decode,
            config.train.eval_batch_size,
            0,
            paraphrase,
            None,
        )?;
        let mut report = report;
        let baselines = if args.on_train {
            None
        } else {
            let run_cache = config.train.out_dir.join("cache");
            let cache = if run_cache.is_dir() {
                run_cache
            } else {
                out.join("cache")
            };
            let train = Examples::build(
                split_pairs(&config)?.0,
                &encoder,
                &config,
                Some(&cache),
                &device,
            )?;
            let b = baselines(&train, &examples);
            for (sample, retrieved) in report.samples.iter_mut().zip(&b.retrieved) {
                sample.retrieved = Some(retrieved.clone());
            }
            Some(b)
        };
        write_samples(&out.join("samples.jsonl"), &report.samples)?;
        let metrics = serde_json::json!({
            "model": args.model,
            "task": config.task,
            "examples": examples.len(),
            "dropped_over_max_len": examples.dropped,
            "loss": loss,
            "generation": report,
            "baselines": baselines,
            "decode": config.decode,
        });
        let text = serde_json::to_string_pretty(&metrics).expect("serialisable");
        latent_core::atomic::write_atomic(&out.join("metrics.json"), text.as_bytes())?;
        println!("{text}");
        Ok(())
    }
}

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = Args::parse();
    let device = args.device;
    if let Err(err) = device.run(Eval(args)).map_err(Into::into).and_then(|r| r) {
        let err: sgdd_diffusion::SgddError = err;
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}
