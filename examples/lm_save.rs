//! Writes a causal LM in Hugging Face layout (`config.json` + `model.safetensors`): either a
//! checkpoint converted to another dtype, or a seeded random initialisation from a `config.json`.
//!
//! ```text
//! cargo run --release --example lm_save -- --model <DIR|HUB_ID> --out <DIR> [--save-dtype f32|bf16|f16]
//! cargo run --release --example lm_save -- --config configs/bench/tiny.json --seed 0 --out <DIR>
//! ```

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::DType;
use clap::Parser;
use latent_core::{CausalLm, CpuBackend, ModelConfig, Pretrained, SaveDtype};

#[derive(Parser, Debug)]
#[command(about = "Save a causal LM in Hugging Face layout")]
struct Args {
    /// Model directory or hub id to convert.
    #[arg(long, conflicts_with = "config")]
    model: Option<String>,
    /// A config.json to build a randomly initialised model from.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seed of the random initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Element type on disk: f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    save_dtype: String,
}

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = Args::parse();
    if let Err(err) = run(args) {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> latent_core::Result<()> {
    let device = Default::default();
    let save_dtype = match latent_core::parse_dtype(&args.save_dtype)? {
        DType::BF16 => SaveDtype::BF16,
        DType::F16 => SaveDtype::F16,
        _ => SaveDtype::F32,
    };
    let model = match (&args.model, &args.config) {
        (Some(spec), _) => Pretrained::<CpuBackend>::load(spec, &device, DType::F32)?.model,
        (None, Some(config)) => {
            CpuBackend::seed(&device, args.seed);
            CausalLm::<CpuBackend>::new(&ModelConfig::from_file(config)?, &device)
        }
        (None, None) => {
            eprintln!("error: give --model or --config");
            std::process::exit(2);
        }
    };
    model.save_pretrained(&args.out, save_dtype)?;
    println!(
        "saved {} parameters ({}) to {}",
        model.num_params(),
        save_dtype.torch_name(),
        args.out.display()
    );
    Ok(())
}
