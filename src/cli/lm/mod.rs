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
    ///
    /// Runs one forward pass of a Hugging Face causal LM and writes to --out (f32 safetensors) its
    /// logits [1, seq, vocab] and hidden_states.<i> [1, seq, hidden] for i = 0..=num_layers
    /// (transformers' output_hidden_states convention); prints `wrote N tensors to OUT`. With
    /// --incremental the same outputs are computed position by position through the KV cache.
    /// --dry-run prints the inputs and stops.
    Forward(forward::ForwardArgs),
    /// Convert a checkpoint (`--model`) or write a seeded random model (`--config`) in Hugging
    /// Face layout to `--out`.
    ///
    /// Converts a checkpoint (--model DIR|HUB_ID, with --save-dtype) or writes a seeded random
    /// model (--config config.json) in Hugging Face layout (config.json, model.safetensors) to
    /// --out (or --output-dir); prints the parameter count. Runs on the CPU. --dry-run prints the
    /// inputs.
    Save(save::SaveArgs),
    /// Generate text through the KV cache; prints the text and tokens/s, writes nothing.
    ///
    /// Generates text from a causal LM through the KV cache; prints the text on stdout and the
    /// prompt/decoding speed (tokens/s) on stderr; writes nothing. With --chat the prompt is
    /// rendered with the model's chat template (tokenizer_config.json), and the template's
    /// end-of-turn token also stops generation. --dry-run prints the inputs and stops.
    Generate(generate::GenerateArgs),
    /// Encode a text with a BERT-family encoder; writes `last_hidden_state` and
    /// `sentence_embedding` (f32 safetensors) to `--out`.
    ///
    /// Encodes one text with a BERT-family encoder (BERT, RoBERTa, MiniLM) and writes to --out (f32
    /// safetensors) its last_hidden_state [1, seq, hidden] and sentence_embedding [1, hidden]
    /// (attention-masked mean of the last hidden state, not normalised); prints a summary line on
    /// stderr. --dry-run prints the inputs and stops.
    Encode(encode::EncodeArgs),
    /// The forward contract in one second: build, run, save (to `--out`, default
    /// runs/quickstart) and reload a small model on the CPU.
    ///
    /// Builds a small Qwen2-style model from an embedded config on the CPU (no downloads), runs the
    /// forward contract every method uses (ids, hidden states, a latent vector fed in place of a
    /// token), saves it in Hugging Face layout to --out (or --output-dir; default runs/quickstart),
    /// reloads it and checks the logits are identical. --dry-run prints the model config and stops.
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
