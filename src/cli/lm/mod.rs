//! `latent lm <job>`: causal LMs and encoders on their own (forward, save, generate, encode, the
//! quickstart tour).

use clap::Subcommand;
use latent_core::cli::JobResult;

pub mod encode;
pub mod forward;
pub mod generate;
pub mod quickstart;
pub mod save;

/// `latent lm <job>`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// One forward pass of a causal LM; writes `logits` and `hidden_states.<i>` (f32 safetensors)
    /// to `--out`.
    Forward(forward::ForwardArgs),
    /// Convert a checkpoint (`--model`) or write a seeded random model (`--config`) in Hugging
    /// Face layout to `--out`.
    Save(save::SaveArgs),
    /// Generate text through the KV cache; prints the text and tokens/s, writes nothing.
    Generate(generate::GenerateArgs),
    /// Encode a text with a BERT-family encoder; writes `last_hidden_state` and
    /// `sentence_embedding` (f32 safetensors) to `--out`.
    Encode(encode::EncodeArgs),
    /// The forward contract in one second: build, run, save (to `--out`, default
    /// runs/quickstart) and reload a small model on the CPU.
    Quickstart(quickstart::QuickstartArgs),
}

impl Command {
    /// Runs the job.
    pub fn run(self) -> JobResult {
        match self {
            Command::Forward(args) => args.run(),
            Command::Save(args) => args.run(),
            Command::Generate(args) => args.run(),
            Command::Encode(args) => args.run(),
            Command::Quickstart(args) => args.run(),
        }
    }
}

/// A tensor as f32 host data, for safetensors output.
fn host<B: burn::tensor::backend::Backend, const D: usize>(
    t: burn::tensor::Tensor<B, D>,
) -> latent_core::hf::safetensors::HostTensor {
    let data = t.into_data().convert::<f32>();
    latent_core::hf::safetensors::HostTensor {
        shape: data.shape.to_vec(),
        data: data.into_vec().expect("f32 data"),
    }
}
