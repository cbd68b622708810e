//! Runs one forward pass of a Hugging Face causal LM and writes its logits and hidden states.
//!
//! ```text
//! cargo run --release --example lm_forward -- --model <DIR|HUB_ID> --input-ids 1,2,3 \
//!     --out out.safetensors [--dtype f32|bf16|f16] [--device cpu|cuda[:N]]
//! ```
//! Output (f32): `logits` `[1, seq, vocab]`, `hidden_states.<i>` `[1, seq, hidden]` for
//! i = 0..=num_layers (transformers' `output_hidden_states` convention).

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::DType;
use clap::Parser;
use latent_core::hf::safetensors::{write_safetensors, HostTensor};
use latent_core::{parse_dtype, BackendJob, DeviceSpec, LmInput, Pretrained, SaveDtype};

#[derive(Parser, Debug)]
#[command(about = "Forward pass of a causal LM; writes logits and hidden states as safetensors")]
struct Args {
    /// Model directory (config.json + safetensors) or hub id.
    #[arg(long)]
    model: String,
    /// Comma-separated token ids.
    #[arg(long, value_delimiter = ',', required = true)]
    input_ids: Vec<i64>,
    /// Output .safetensors file.
    #[arg(long)]
    out: PathBuf,
    /// Compute dtype of the weights: f32, bf16 or f16.
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    dtype: DType,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

struct Forward(Args);

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
        let out = lm
            .model
            .forward(LmInput::ids(ids).output_hidden_states(true))?;
        let mut tensors = vec![("logits".to_string(), to_host(out.logits))];
        for (i, h) in out.hidden_states.into_iter().enumerate() {
            tensors.push((format!("hidden_states.{i}"), to_host(h)));
        }
        write_safetensors(&args.out, &tensors, SaveDtype::F32)?;
        Ok(tensors.len())
    }
}

fn to_host<B: Backend>(t: Tensor<B, 3>) -> HostTensor {
    let data = t.into_data().convert::<f32>();
    HostTensor {
        shape: data.shape.to_vec(),
        data: data.into_vec().expect("f32 data"),
    }
}

fn main() {
    let args = Args::parse();
    let (device, out) = (args.device, args.out.clone());
    match device.run(Forward(args)).and_then(|r| r) {
        Ok(n) => println!("wrote {n} tensors to {}", out.display()),
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(1);
        }
    }
}
