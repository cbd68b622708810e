//! `latent lm save`: a causal LM saved in Hugging Face layout.

use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::DType;
use latent_core::cli::{CliError, CommonArgs, Flag, JobResult};
use latent_core::{CausalLm, CpuBackend, ModelConfig, Pretrained, SaveDtype};

const JOB: &str = "latent lm save";

/// Arguments of `latent lm save`.
#[derive(clap::Args, Debug)]
pub struct SaveArgs {
    /// The common flags (`--config`: a config.json to build a randomly initialised model from;
    /// `--output-dir`, `--quiet`, `--dry-run` apply).
    #[command(flatten)]
    pub common: CommonArgs,
    /// Model directory or hub id to convert.
    #[arg(long, conflicts_with = "config")]
    pub model: Option<String>,
    /// Seed of the random initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory (same as `--output-dir`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Element type on disk: f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    pub save_dtype: String,
}

impl SaveArgs {
    /// Builds or loads the model on the CPU and saves it.
    pub fn run(self) -> JobResult {
        let c = &self.common;
        c.accept(
            JOB,
            &[Flag::Config, Flag::OutputDir, Flag::Quiet, Flag::DryRun],
        )?;
        let out = c.output(JOB, self.out.as_deref(), "--out (or --output-dir)")?;
        let save_dtype = match latent_core::parse_dtype(&self.save_dtype)? {
            DType::BF16 => SaveDtype::BF16,
            DType::F16 => SaveDtype::F16,
            _ => SaveDtype::F32,
        };
        if self.model.is_none() && c.config.is_none() {
            return Err(CliError::Missing {
                job: JOB.into(),
                flag: "--model or --config",
            }
            .into());
        }
        if c.dry_run {
            println!("{self:#?}");
            return Ok(());
        }
        let device = Default::default();
        let model = match (&self.model, &c.config) {
            (Some(spec), _) => Pretrained::<CpuBackend>::load(spec, &device, DType::F32)?.model,
            (None, config) => {
                CpuBackend::seed(&device, self.seed);
                let config = config.as_deref().expect("checked above");
                CausalLm::<CpuBackend>::new(&ModelConfig::from_file(config)?, &device)
            }
        };
        model.save_pretrained(&out, save_dtype)?;
        if !c.quiet {
            println!(
                "saved {} parameters ({}) to {}",
                model.num_params(),
                save_dtype.torch_name(),
                out.display()
            );
        }
        Ok(())
    }
}
