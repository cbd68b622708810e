//! Encodes one text with a BERT-family encoder (BERT, RoBERTa, MiniLM) and writes its last hidden
//! state and sentence embedding (attention-masked mean of the last hidden state, not normalised).
//!
//! ```text
//! cargo run --release --example encode -- --model <DIR|HUB_ID> --text "..." --out <FILE>.safetensors
//! ```
//! Output (f32): `last_hidden_state` `[1, seq, hidden]`, `sentence_embedding` `[1, hidden]`.

use std::path::PathBuf;

use burn::prelude::*;
use clap::Parser;
use latent_core::hf::safetensors::{write_safetensors, HostTensor, SaveDtype};
use latent_core::{BackendJob, DeviceSpec};
use sgdd_diffusion::encoder::{masked_mean, SemanticEncoder};

#[derive(Parser, Debug)]
#[command(about = "Encode a text with a BERT-family encoder")]
struct Args {
    /// Model directory or hub id (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    model: String,
    /// The text.
    #[arg(long)]
    text: String,
    /// Output safetensors file.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> HostTensor {
    let data = t.into_data().convert::<f32>();
    HostTensor {
        shape: data.shape.to_vec(),
        data: data.into_vec().expect("f32"),
    }
}

struct Encode(Args);

impl BackendJob for Encode {
    type Output = sgdd_diffusion::Result<()>;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        let args = self.0;
        let encoder = SemanticEncoder::<B>::load(&args.model, &device)?;
        let ids = encoder.tokenize(&args.text)?;
        let (hidden, mask) = encoder.hidden(std::slice::from_ref(&ids), &device);
        let embedding = masked_mean(hidden.clone(), mask);
        let [_, seq, width] = hidden.dims();
        write_safetensors(
            &args.out,
            &[
                ("last_hidden_state".into(), host(hidden)),
                ("sentence_embedding".into(), host(embedding)),
            ],
            SaveDtype::F32,
        )?;
        eprintln!(
            "{} tokens, hidden {width}: wrote last_hidden_state [1, {seq}, {width}] and sentence_embedding [1, {width}] to {}",
            ids.len(),
            args.out.display()
        );
        Ok(())
    }
}

// The system allocator maps and zeroes large buffers afresh on every call; mimalloc reuses them
// (docs/performance.md, "Allocation").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = Args::parse();
    if let Err(err) = args
        .device
        .run(Encode(args))
        .map_err(sgdd_diffusion::SgddError::from)
        .and_then(|r| r)
    {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}
