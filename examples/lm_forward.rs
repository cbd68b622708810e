//! Runs one forward pass of a Hugging Face causal LM and writes its logits and hidden states.
//!
//! ```text
//! cargo run --release --example lm_forward -- --model <DIR|HUB_ID> --input-ids 1,2,3 \
//!     --out out.safetensors [--dtype f32|bf16|f16] [--device cpu|cuda[:N]] [--incremental]
//! ```
//! Output (f32): `logits` `[1, seq, vocab]`, `hidden_states.<i>` `[1, seq, hidden]` for
//! i = 0..=num_layers (transformers' `output_hidden_states` convention). With `--incremental` the
//! same outputs are computed position by position through the KV cache.

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::DType;
use clap::Parser;
use latent_core::hf::safetensors::{write_safetensors, HostTensor};
use latent_core::infer::KvCache;
use latent_core::{
    parse_dtype, BackendJob, CausalLm, DeviceSpec, LmInput, LmOutput, Pretrained, SaveDtype,
};

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
    /// Compute position by position through the KV cache instead of one forward pass.
    #[arg(long)]
    incremental: bool,
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
        let out = if args.incremental {
            incremental(&lm.model, ids, args.dtype)?
        } else {
            lm.model
                .forward(LmInput::ids(ids).output_hidden_states(true))?
        };
        let mut tensors = vec![("logits".to_string(), to_host(out.logits))];
        for (i, h) in out.hidden_states.into_iter().enumerate() {
            tensors.push((format!("hidden_states.{i}"), to_host(h)));
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

fn to_host<B: Backend>(t: Tensor<B, 3>) -> HostTensor {
    let data = t.into_data().convert::<f32>();
    HostTensor {
        shape: data.shape.to_vec(),
        data: data.into_vec().expect("f32 data"),
    }
}

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
