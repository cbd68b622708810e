//! `latent lm forward`: one forward pass of a Hugging Face causal LM, its logits and hidden states
//! written as safetensors (a fixed contract: flags and output as documented in the README).

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::DType;
use latent_core::cli::{CommonArgs, Flag, JobResult};
use latent_core::hf::safetensors::write_safetensors;
use latent_core::infer::KvCache;
use latent_core::{parse_dtype, BackendJob, CausalLm, LmInput, LmOutput, Pretrained, SaveDtype};

const JOB: &str = "latent lm forward";

/// Arguments of `latent lm forward`.
#[derive(clap::Args, Debug)]
pub struct ForwardArgs {
    /// The common flags (`--device`, `--quiet`, `--dry-run` apply).
    #[command(flatten)]
    pub common: CommonArgs,
    /// Model directory (config.json + safetensors) or hub id.
    #[arg(long)]
    pub model: String,
    /// Comma-separated token ids.
    #[arg(long, value_delimiter = ',', required = true)]
    pub input_ids: Vec<i64>,
    /// Output .safetensors file.
    #[arg(long)]
    pub out: PathBuf,
    /// Compute dtype of the weights: f32, bf16 or f16.
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub dtype: DType,
    /// Compute position by position through the KV cache instead of one forward pass.
    #[arg(long)]
    pub incremental: bool,
}

impl ForwardArgs {
    /// Runs the forward pass on `--device` (default cpu) and writes `--out`.
    pub fn run(self) -> JobResult {
        let uses = [Flag::Device, Flag::Quiet, Flag::DryRun];
        let Some(device) = self.common.start_on_device(JOB, &uses, &self)? else {
            return Ok(());
        };
        let (quiet, out) = (self.common.quiet, self.out.clone());
        let n = device.run(Forward(self))??;
        if !quiet {
            println!("wrote {n} tensors to {}", out.display());
        }
        Ok(())
    }
}

struct Forward(ForwardArgs);

impl BackendJob for Forward {
    type Output = latent_core::Result<usize>;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        let args = self.0;
        let lm = Pretrained::<B>::load(&args.model, &device, args.dtype)?;
        if !lm.unused_keys.is_empty() {
            eprintln!("warning: unused checkpoint tensors: {:?}", lm.unused_keys);
        }
        let seq = args.input_ids.len();
        let ids =
            Tensor::<B, 2, Int>::from_data(TensorData::new(args.input_ids, [1, seq]), &device);
        let out = if args.incremental {
            incremental(&lm.model, ids, args.dtype)?
        } else {
            lm.model
                .forward(LmInput::ids(ids).output_hidden_states(true))?
        };
        let mut tensors = vec![("logits".to_string(), super::host(out.logits))];
        for (i, h) in out.hidden_states.into_iter().enumerate() {
            tensors.push((format!("hidden_states.{i}"), super::host(h)));
        }
        write_safetensors(&args.out, &tensors, SaveDtype::F32)?;
        Ok(tensors.len())
    }
}

/// Feeds `ids` `[1, seq]` one position at a time through a KV cache, concatenating the outputs.
fn incremental<B: Backend>(
    model: &CausalLm<B>,
    ids: Tensor<B, 2, Int>,
    dtype: DType,
) -> latent_core::Result<LmOutput<B>> {
    let seq = ids.dims()[1];
    let mut cache = KvCache::new(model.config(), 1, seq, dtype, &ids.device());
    let steps = (0..seq)
        .map(|t| {
            let input =
                LmInput::ids(ids.clone().slice([0..1, t..t + 1])).output_hidden_states(true);
            model.forward_cached(input, &mut cache)
        })
        .collect::<latent_core::Result<Vec<_>>>()?;
    let cat =
        |f: &dyn Fn(&LmOutput<B>) -> Tensor<B, 3>| Tensor::cat(steps.iter().map(f).collect(), 1);
    let layers = steps[0].hidden_states.len();
    Ok(LmOutput {
        logits: cat(&|o| o.logits.clone()),
        last_hidden: cat(&|o| o.last_hidden.clone()),
        hidden_states: (0..layers)
            .map(|i| cat(&|o| o.hidden_states[i].clone()))
            .collect(),
    })
}
