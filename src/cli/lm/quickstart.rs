//! `latent lm quickstart`: the forward contract in one second on the CPU.

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::DType;
use latent_core::cli::{CommonArgs, Flag, JobResult};
use latent_core::{CausalLm, CpuBackend, LmInput, ModelConfig, Pretrained, SaveDtype};

const JOB: &str = "latent lm quickstart";

const CONFIG: &str = include_str!("../../../configs/bench/tiny.json");

type B = CpuBackend;

/// Arguments of `latent lm quickstart`.
#[derive(clap::Args, Debug)]
pub struct QuickstartArgs {
    /// The common flags (`--output-dir`, `--dry-run` apply).
    #[command(flatten)]
    pub common: CommonArgs,
    /// Where the model is saved (Hugging Face layout; same as `--output-dir`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seed of the random initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl QuickstartArgs {
    /// Runs the tour.
    pub fn run(self) -> JobResult {
        let c = &self.common;
        c.accept(JOB, &[Flag::OutputDir, Flag::DryRun])?;
        let out = self
            .out
            .clone()
            .or(c.output_dir.clone())
            .unwrap_or_else(|| PathBuf::from("runs/quickstart"));
        let config = ModelConfig::from_json_str(CONFIG, "configs/bench/tiny.json".as_ref())?;
        if c.dry_run {
            println!("{config:#?}");
            println!("out: {}", out.display());
            return Ok(());
        }
        quickstart(&config, self.seed, &out)
    }
}

/// The tour with `config`, saving to `out`.
pub fn quickstart(config: &ModelConfig, seed: u64, out: &std::path::Path) -> JobResult {
    let device = Default::default();
    B::seed(&device, seed);
    let model = CausalLm::<B>::new(config, &device);
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
    let forward = model.forward(LmInput::ids(ids.clone()).output_hidden_states(true))?;
    println!(
        "forward: logits {:?}, {} hidden states of {:?} in {:.1} ms",
        forward.logits.dims(),
        forward.hidden_states.len(),
        forward.last_hidden.dims(),
        start.elapsed().as_secs_f64() * 1e3
    );

    // 2. A continuous thought: the last hidden state of position 2 replaces the token at position 3.
    let thought = forward.last_hidden.clone().slice([0..1, 2..3]);
    let [_, s, h] = forward.last_hidden.dims();
    let embeds =
        Tensor::<B, 3>::zeros([1, s, h], &device).slice_assign([0..1, 3..4, 0..h], thought);
    let replace = Tensor::<B, 2, Bool>::from_bool(
        TensorData::new((0..s).map(|i| i == 3).collect::<Vec<_>>(), [1, s]),
        &device,
    );
    let latent = model.forward(LmInput::mixed(ids.clone(), embeds, replace))?;
    let changed = (latent.logits.clone() - forward.logits.clone())
        .abs()
        .max_dim(2)
        .into_data();
    println!(
        "latent step at position 3: max logit change per position {:?}",
        changed.convert::<f32>().into_vec::<f32>()?
    );

    // 3. Save in Hugging Face layout, reload, compare.
    model.save_pretrained(out, SaveDtype::F32)?;
    let reloaded = Pretrained::<B>::load(out.to_str().unwrap_or("."), &device, DType::F32)?;
    let again = reloaded.model.forward(LmInput::ids(ids))?;
    let diff: f32 = (again.logits - forward.logits)
        .abs()
        .max()
        .into_scalar()
        .elem();
    println!(
        "saved to {} and reloaded: max logit difference {diff}",
        out.display()
    );
    if diff != 0.0 {
        return Err("reloaded model differs".into());
    }
    println!("ok");
    Ok(())
}
