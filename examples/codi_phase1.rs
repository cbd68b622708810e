//! Phase 1 of hybrid CODI (`docs/codi-hybrid.md`): a CoT-capable saved model (a `final_model`
//! directory of `codi_train`, e.g. CoT-SFT or CODI) measures the entropy of every CoT step of
//! GSM8k-Aug-format data and writes hybrid samples (entropy-guided / random / explicit) to one
//! JSON file; prints summary statistics.
//!
//! ```text
//! cargo run --release --example codi_phase1 -- --model_path runs/x/cot_sft/final_model \
//!     --data_path runs/x/data/train.txt --output_path runs/x/hybrid/hybrid_training_data.json
//! ```

use std::path::PathBuf;

use burn::prelude::*;
use clap::Parser;
use latent_codi::config::DataFormat;
use latent_codi::hybrid::phase1::{run_phase1, Phase1Config};
use latent_codi::run::load_problems;
use latent_core::{BackendJob, DeviceSpec};

#[derive(Parser, Debug)]
#[command(about = "Phase 1: entropy-guided hybrid explicit/latent training data")]
struct Args {
    /// The CoT-capable saved model directory.
    #[arg(long = "model_path")]
    model_path: PathBuf,
    /// GSM8k-Aug-format training data.
    #[arg(long = "data_path")]
    data_path: PathBuf,
    /// `icot` or `icot_nl`.
    #[arg(long = "data_format", default_value = "icot")]
    data_format: String,
    /// Where the JSON file goes.
    #[arg(long = "output_path")]
    output_path: PathBuf,
    /// Use only the first N problems.
    #[arg(long = "max_samples")]
    max_samples: Option<usize>,
    /// Share of entropy-guided samples.
    #[arg(long = "entropy_ratio", default_value_t = 0.5)]
    entropy_ratio: f64,
    /// Share of random samples (the rest is explicit).
    #[arg(long = "random_ratio", default_value_t = 0.3)]
    random_ratio: f64,
    /// Steps below this quantile of all step entropies become latent.
    #[arg(long = "latent_quantile", default_value_t = 0.5)]
    latent_quantile: f64,
    /// Thoughts per latent step.
    #[arg(long = "latents_per_step", default_value_t = 2)]
    latents_per_step: usize,
    /// Largest run of thoughts.
    #[arg(long = "max_latent_steps", default_value_t = 6)]
    max_latent_steps: usize,
    /// Seed of the strategy draws.
    #[arg(long, default_value_t = 11)]
    seed: u64,
    /// Samples per forward pass.
    #[arg(long = "batch_size", default_value_t = 32)]
    batch_size: usize,
    /// `cpu`, `cuda`, `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl BackendJob for Args {
    type Output = Result<(), Box<dyn std::error::Error>>;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        let format: DataFormat = serde_json::from_value(serde_json::json!(self.data_format))?;
        let separator = if matches!(format, DataFormat::IcotNl | DataFormat::IcotNlHf) {
            ". "
        } else {
            " "
        };
        let problems = load_problems(&self.data_path, format, self.max_samples)?;
        let config = Phase1Config {
            entropy_ratio: self.entropy_ratio,
            random_ratio: self.random_ratio,
            latent_quantile: self.latent_quantile,
            latents_per_step: self.latents_per_step,
            max_latent_steps: self.max_latent_steps,
            seed: self.seed,
            batch_size: self.batch_size,
        };
        let summary = run_phase1::<B>(
            &self.model_path,
            &problems,
            separator,
            &config,
            &self.output_path,
            &self.data_path.display().to_string(),
            &device,
        )?;
        println!("{}", serde_json::to_string_pretty(&summary)?);
        println!("wrote {}", self.output_path.display());
        Ok(())
    }
}

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = Args::parse();
    let result = args
        .device
        .parse::<DeviceSpec>()
        .map_err(Into::into)
        .and_then(|device| device.run(args)?);
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
