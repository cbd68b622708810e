//! `latent lm encode`: one text through a BERT-family encoder, its last hidden state and sentence
//! embedding written as safetensors (a fixed contract: flags and output as documented in the
//! README).

use std::path::PathBuf;

use burn::prelude::*;
use latent_core::cli::{CommonArgs, Flag, JobResult};
use latent_core::hf::safetensors::{write_safetensors, SaveDtype};
use latent_core::BackendJob;
use sgdd_diffusion::encoder::{masked_mean, SemanticEncoder};

const JOB: &str = "latent lm encode";

/// Arguments of `latent lm encode`.
#[derive(clap::Args, Debug)]
pub struct EncodeArgs {
    /// The common flags (`--device`, `--quiet`, `--dry-run` apply).
    #[command(flatten)]
    pub common: CommonArgs,
    /// Model directory or hub id (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    pub model: String,
    /// The text.
    #[arg(long)]
    pub text: String,
    /// Output safetensors file.
    #[arg(long)]
    pub out: PathBuf,
}

impl EncodeArgs {
    /// Encodes on `--device` (default cpu) and writes `--out`.
    pub fn run(self) -> JobResult {
        let uses = [Flag::Device, Flag::Quiet, Flag::DryRun];
        let Some(device) = self.common.start_on_device(JOB, &uses, &self)? else {
            return Ok(());
        };
        Ok(device.run(Encode(self))??)
    }
}

struct Encode(EncodeArgs);

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
                ("last_hidden_state".into(), super::host(hidden)),
                ("sentence_embedding".into(), super::host(embedding)),
            ],
            SaveDtype::F32,
        )?;
        if !args.common.quiet {
            eprintln!(
                "{} tokens, hidden {width}: wrote last_hidden_state [1, {seq}, {width}] and sentence_embedding [1, {width}] to {}",
                ids.len(),
                args.out.display()
            );
        }
        Ok(())
    }
}
