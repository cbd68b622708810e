//! Phase 2 of hybrid CODI (`docs/codi-hybrid.md`): trains on the hybrid samples of Phase 1 with the
//! plain CODI model, special ids, projection and forward, so the output `final_model/` evaluates
//! in plain `codi_eval` (and in hybrid mode with `--baseline_mode`). Flags mirror the design
//! document; `--config` optionally gives a run config (`configs/codi/*.yaml`) the flags override.
//!
//! ```text
//! cargo run --release --example codi_phase2 -- --restore_from runs/x/codi/final_model \
//!     --hybrid_data_path runs/x/hybrid/hybrid_training_data.json --output_dir runs/x/hybrid_codi \
//!     --num_train_epochs 2 --per_device_train_batch_size 32 --learning_rate 1e-3
//! ```
//! `--devices cpu,cpu` (or `cuda:0,cuda:1`) trains one data-parallel replica per device, each taking
//! `per_device_train_batch_size` examples of every micro-batch (`training.effective_batch_size`
//! must be a multiple of that times the device count).

use std::path::PathBuf;

use burn::backend::Autodiff;
use burn::prelude::*;
use clap::Parser;
use latent_codi::config::CodiRunConfig;
use latent_codi::hybrid::batch::SwitchLabels;
use latent_codi::hybrid::phase2::{
    default_phase2_config, run_phase2, HybridTraining, Phase2Overrides,
};
use latent_codi::run::TrainOptions;
use latent_core::train::StopFlag;
use latent_core::{DeviceList, DevicesJob};

#[derive(Parser, Debug)]
#[command(about = "Phase 2: hybrid explicit/latent CODI training")]
struct Args {
    /// A run config whose settings the flags override (default: the design document's Phase 2
    /// defaults: 5 epochs, batch 4, lr 2e-5, warm-up 10 %).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides `dotted.key=value` of the config (repeatable).
    #[arg(long = "set")]
    overrides: Vec<String>,
    /// Base model: a local directory or hub id.
    #[arg(long = "model_name_or_path")]
    model_name_or_path: Option<String>,
    /// A saved CODI model directory (`final_model`) to start from.
    #[arg(long = "restore_from")]
    restore_from: Option<PathBuf>,
    /// The Phase 1 JSON file.
    #[arg(long = "hybrid_data_path")]
    hybrid_data_path: PathBuf,
    /// Where checkpoints, logs and `final_model` go.
    #[arg(long = "output_dir")]
    output_dir: Option<PathBuf>,
    /// Epochs.
    #[arg(long = "num_train_epochs")]
    num_train_epochs: Option<usize>,
    /// Examples per micro-batch.
    #[arg(long = "per_device_train_batch_size")]
    per_device_train_batch_size: Option<usize>,
    /// Peak learning rate.
    #[arg(long = "learning_rate")]
    learning_rate: Option<f64>,
    /// Thoughts of plain CODI evaluation of the result.
    #[arg(long = "num_latent")]
    num_latent: Option<usize>,
    /// Inner width of a new projection.
    #[arg(long = "prj_dim")]
    prj_dim: Option<usize>,
    /// Share of samples trained as pure explicit CoT (drawn per epoch).
    #[arg(long = "hybrid_cot_only_ratio", default_value_t = 0.2)]
    hybrid_cot_only_ratio: f64,
    /// Also distil each `<eot>` towards the teacher's state at the end of the replaced steps.
    #[arg(long = "eot_distill")]
    eot_distill: bool,
    /// Switch predictions trained on entropy-rule samples: all, boundaries, off.
    #[arg(long = "switch_labels", default_value = "all")]
    switch_labels: SwitchLabels,
    /// β: weight of the distillation term.
    #[arg(long = "distill_loss_factor")]
    distill_loss_factor: Option<f64>,
    /// γ: weight of the CE on the full explicit sequence.
    #[arg(long = "ref_loss_factor")]
    ref_loss_factor: Option<f64>,
    /// Train in bf16 with f32 master weights (`training.precision: bf16`).
    #[arg(long)]
    bf16: bool,
    /// Resume from the newest checkpoint in the output directory.
    #[arg(long)]
    resume: bool,
    /// Data-parallel replicas, one per device (`cpu,cpu`, `cuda:0,cuda:1`), each taking
    /// `per_device_train_batch_size` examples of every micro-batch; default: `training.device`.
    #[arg(long)]
    devices: Option<String>,
}

struct Job {
    args: Args,
    config: CodiRunConfig,
}

type Out = Result<(), Box<dyn std::error::Error>>;

impl DevicesJob for Job {
    type Output = Out;

    fn run<B: Backend>(self, devices: Vec<B::Device>) -> Out {
        let options = TrainOptions {
            resume: self.args.resume,
            progress: true,
            stop: Some(StopFlag::ctrl_c()?),
        };
        let (_, report) = run_phase2::<Autodiff<B>>(
            &self.config,
            &self.args.hybrid_data_path,
            &HybridTraining {
                cot_only_ratio: self.args.hybrid_cot_only_ratio,
                eot_distill: self.args.eot_distill,
                switch_labels: self.args.switch_labels,
            },
            &options,
            &devices,
        )?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        Ok(())
    }
}

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = Args::parse();
    let result = (|| -> Out {
        let base = match &args.config {
            Some(path) => CodiRunConfig::load(path, &args.overrides)?,
            None => default_phase2_config(),
        };
        let config = Phase2Overrides {
            model_name_or_path: args.model_name_or_path.clone(),
            restore_from: args.restore_from.clone(),
            output_dir: args.output_dir.clone(),
            num_train_epochs: args.num_train_epochs,
            per_device_train_batch_size: args.per_device_train_batch_size,
            learning_rate: args.learning_rate,
            num_latent: args.num_latent,
            prj_dim: args.prj_dim,
            distill_loss_factor: args.distill_loss_factor,
            ref_loss_factor: args.ref_loss_factor,
            bf16: args.bf16,
        }
        .apply(base);
        config.validate(std::path::Path::new("<command line>"), &[])?;
        let devices: DeviceList = args
            .devices
            .as_deref()
            .unwrap_or(&config.training.device)
            .parse()?;
        devices.run(Job { args, config })?
    })();
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
