//! `latent hrpo forward`: one forward pass of a base model plus an HRPO adapter, with thinking
//! states mixed in (a fixed contract: flags and output as documented in the README).

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::DType;
use latent_core::cli::{CommonArgs, Flag, JobResult};
use latent_core::hf::safetensors::{write_safetensors, Checkpoint, HostTensor};
use latent_core::latent::ThinkingLm;
use latent_core::lora::{LoraConfig, ADAPTER_CONFIG};
use latent_core::{parse_dtype, BackendJob, CoreError, Pretrained, SaveDtype};

const JOB: &str = "latent hrpo forward";

/// Arguments of `latent hrpo forward`.
#[derive(clap::Args, Debug, Clone)]
pub struct ForwardArgs {
    /// The common flags (`--device`, `--quiet`, `--dry-run` apply).
    #[command(flatten)]
    pub common: CommonArgs,
    /// Base model directory (config.json + safetensors) or hub id.
    #[arg(long)]
    pub model: String,
    /// PEFT adapter directory with the thinking residual in modules_to_save.
    #[arg(long)]
    pub adapter: PathBuf,
    /// Comma-separated token ids.
    #[arg(long, value_delimiter = ',', required = true)]
    pub input_ids: Vec<i64>,
    /// Comma-separated 0/1 per position: 1 mixes the thinking state in.
    #[arg(long, value_delimiter = ',', required = true)]
    pub thinking_mask: Vec<u8>,
    /// safetensors file with `thinking_states` `[seq, hidden]`.
    #[arg(long)]
    pub thinking_states: PathBuf,
    /// Output .safetensors file.
    #[arg(long)]
    pub out: PathBuf,
    /// Compute dtype of the weights: f32, bf16 or f16 (Λ stays f32).
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub dtype: DType,
    /// Also write the loaded adapter back in PEFT's layout into this directory (a round trip:
    /// `PeftModel.from_pretrained` reads it).
    #[arg(long)]
    pub save_adapter: Option<PathBuf>,
}

impl ForwardArgs {
    /// Runs the forward pass on `--device` (default cpu) and writes `--out`.
    pub fn run(self) -> JobResult {
        let uses = [Flag::Device, Flag::Quiet, Flag::DryRun];
        let Some(device) = self.common.start_on_device(JOB, &uses, &self)? else {
            return Ok(());
        };
        let (quiet, out) = (self.common.quiet, self.out.clone());
        device.run(Forward(self))??;
        if !quiet {
            println!("wrote logits to {}", out.display());
        }
        Ok(())
    }
}

struct Forward(ForwardArgs);

impl BackendJob for Forward {
    type Output = latent_core::Result<()>;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        let args = self.0;
        let seq = args.input_ids.len();
        if args.thinking_mask.len() != seq || args.thinking_mask.iter().any(|&m| m > 1) {
            return Err(CoreError::Shape(format!(
                "--thinking-mask needs {seq} values of 0 or 1 (one per input id), got {:?}",
                args.thinking_mask
            )));
        }
        let base = Pretrained::<B>::load(&args.model, &device, args.dtype)?;
        let model = ThinkingLm::load_adapter(base.model, &args.adapter, args.dtype)?;
        if let Some(dir) = &args.save_adapter {
            let config = LoraConfig::from_file(args.adapter.join(ADAPTER_CONFIG))?;
            model.save_adapter(dir, &config)?;
        }
        let hidden = model.lm.config().hidden_size;
        let file = Checkpoint::open(std::slice::from_ref(&args.thinking_states))?;
        let states = file
            .read("thinking_states")?
            .ok_or_else(|| CoreError::MissingTensor {
                location: file.location(),
                key: "thinking_states".into(),
                param: format!("thinking states [{seq}, {hidden}]"),
            })?;
        if states.shape != [seq, hidden] {
            return Err(CoreError::TensorMismatch {
                location: file.location(),
                key: "thinking_states".into(),
                expected: format!("shape [{seq}, {hidden}]"),
                found: format!("shape {:?}", states.shape),
            });
        }
        let ids =
            Tensor::<B, 2, Int>::from_data(TensorData::new(args.input_ids, [1, seq]), &device);
        let mask: Vec<bool> = args.thinking_mask.iter().map(|&m| m == 1).collect();
        let mask = Tensor::<B, 2, Bool>::from_data(TensorData::new(mask, [1, seq]), &device);
        let states =
            Tensor::<B, 3>::from_data(TensorData::new(states.data, [1, seq, hidden]), &device);
        let logits = model.forward_mixed(ids, mask, states, None)?.logits;
        let data = logits.into_data().convert::<f32>();
        let logits = HostTensor {
            shape: data.shape.to_vec(),
            data: data.into_vec().expect("f32 data"),
        };
        write_safetensors(&args.out, &[("logits".to_string(), logits)], SaveDtype::F32)
    }
}
