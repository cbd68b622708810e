//! The workspace's main job until the CODI pipeline lands: builds a small Qwen2-style model from an
//! embedded config on the CPU (no downloads), runs the forward contract every method uses (ids,
//! hidden states, a latent vector fed in place of a token), saves it in Hugging Face layout,
//! reloads it and checks the logits are identical.
//!
//! ```text
//! cargo run --release --example quickstart [-- --out runs/quickstart]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::DType;
use clap::Parser;
use latent_core::{CausalLm, CpuBackend, LmInput, ModelConfig, Pretrained, SaveDtype};

const CONFIG: &str = include_str!("../configs/bench/tiny.json");

#[derive(Parser, Debug)]
#[command(about = "Build, run, save and reload a small causal LM on the CPU")]
struct Args {
    /// Where the model is saved (Hugging Face layout).
    #[arg(long, default_value = "runs/quickstart")]
    out: PathBuf,
    /// Seed of the random initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

type B = CpuBackend;

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let device = Default::default();
    B::seed(&device, args.seed);
    let config = ModelConfig::from_json_str(CONFIG, "configs/bench/tiny.json".as_ref())?;
    let model = CausalLm::<B>::new(&config, &device);
    println!(
        "model: {:?}, {} layers, hidden {}, {} parameters",
        config.family,
        config.num_hidden_layers,
        config.hidden_size,
        config.num_parameters()
    );

    // 1. Token ids in, logits and every layer's hidden state out.
    let ids = Tensor::<B, 2, Int>::from_ints([[11, 42, 7, 99, 3, 250]], &device);
    let start = Instant::now();
    let out = model.forward(LmInput::ids(ids.clone()).output_hidden_states(true))?;
    println!(
        "forward: logits {:?}, {} hidden states of {:?} in {:.1} ms",
        out.logits.dims(),
        out.hidden_states.len(),
        out.last_hidden.dims(),
        start.elapsed().as_secs_f64() * 1e3
    );

    // 2. A continuous thought: the last hidden state of position 2 replaces the token at position 3.
    let thought = out.last_hidden.clone().slice([0..1, 2..3]);
    let [_, s, h] = out.last_hidden.dims();
    let embeds =
        Tensor::<B, 3>::zeros([1, s, h], &device).slice_assign([0..1, 3..4, 0..h], thought);
    let replace = Tensor::<B, 2, Bool>::from_bool(
        TensorData::new((0..s).map(|i| i == 3).collect::<Vec<_>>(), [1, s]),
        &device,
    );
    let latent = model.forward(LmInput::mixed(ids.clone(), embeds, replace))?;
    let changed = (latent.logits.clone() - out.logits.clone())
        .abs()
        .max_dim(2)
        .into_data();
    println!(
        "latent step at position 3: max logit change per position {:?}",
        changed.convert::<f32>().into_vec::<f32>()?
    );

    // 3. Save in Hugging Face layout, reload, compare.
    model.save_pretrained(&args.out, SaveDtype::F32)?;
    let reloaded = Pretrained::<B>::load(args.out.to_str().unwrap_or("."), &device, DType::F32)?;
    let again = reloaded.model.forward(LmInput::ids(ids))?;
    let diff: f32 = (again.logits - out.logits).abs().max().into_scalar().elem();
    println!(
        "saved to {} and reloaded: max logit difference {diff}",
        args.out.display()
    );
    if diff != 0.0 {
        return Err("reloaded model differs".into());
    }
    println!("ok");
    Ok(())
}
