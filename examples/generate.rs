//! Generates text from a causal LM through the KV cache; prints the text and tokens/s.
//!
//! ```text
//! cargo run --release --example generate -- --model <DIR|HUB_ID> --prompt "TEXT" [--chat] \
//!     [--system TEXT] [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] \
//!     [--stop TEXT]... [--device cpu|cuda[:N]] [--dtype f32|bf16]
//! cargo run --release --example generate -- --model crates/latent-core/tests/fixtures/tiny-chat \
//!     --prompt "What is 3 times 4?" --chat
//! ```
//! With `--chat` the prompt is rendered with the model's chat template (`tokenizer_config.json`),
//! and the template's end-of-turn token also stops generation.

use burn::prelude::*;
use burn::tensor::DType;
use clap::Parser;
use latent_core::hf::chat_template::{ChatMessage, ChatTemplate};
use latent_core::infer::{generate, GenerateConfig, SamplingConfig};
use latent_core::{parse_dtype, BackendJob, CoreError, DeviceSpec, Pretrained};

#[derive(Parser, Debug)]
#[command(about = "Generate text with a causal LM")]
struct Args {
    /// Model directory or hub id (needs tokenizer.json).
    #[arg(long)]
    model: String,
    /// The prompt.
    #[arg(long)]
    prompt: String,
    /// Render the prompt with the model's chat template.
    #[arg(long)]
    chat: bool,
    /// A system message (with --chat).
    #[arg(long)]
    system: Option<String>,
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// 0 = off.
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// 1 = off.
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop strings (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    dtype: DType,
}

struct Generate(Args);

impl BackendJob for Generate {
    type Output = latent_core::Result<()>;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        let args = self.0;
        let lm = Pretrained::<B>::load(&args.model, &device, args.dtype)?;
        let tokenizer = lm.tokenizer.as_ref().ok_or_else(|| CoreError::Tokenizer {
            path: lm.files.config.with_file_name("tokenizer.json"),
            message: "the model has no tokenizer.json".into(),
        })?;
        let mut eos = lm.model.config().eos_token_ids.clone();
        let text = if args.chat {
            let path = lm
                .files
                .tokenizer_config
                .clone()
                .unwrap_or_else(|| lm.files.config.with_file_name("tokenizer_config.json"));
            let template = ChatTemplate::from_tokenizer_config(&path)?;
            if let Some(id) = template.eos_token().and_then(|t| tokenizer.token_to_id(t)) {
                eos.push(id);
            }
            let mut messages: Vec<ChatMessage> = args
                .system
                .iter()
                .map(|s| ChatMessage::new("system", s.as_str()))
                .collect();
            messages.push(ChatMessage::new("user", args.prompt.as_str()));
            template.render(&messages, true)?
        } else {
            args.prompt.clone()
        };
        let encoding =
            tokenizer
                .encode(text.as_str(), !args.chat)
                .map_err(|e| CoreError::Tokenizer {
                    path: lm.files.config.with_file_name("tokenizer.json"),
                    message: e.to_string(),
                })?;
        let prompt: Vec<u32> = encoding.get_ids().to_vec();
        let config = GenerateConfig {
            max_new_tokens: args.max_new_tokens,
            sampling: SamplingConfig {
                temperature: args.temperature,
                top_k: args.top_k,
                top_p: args.top_p,
                seed: args.seed,
            },
            eos_token_ids: eos,
            stop_strings: args.stop.clone(),
            ..Default::default()
        };
        let out = generate(
            &lm.model,
            Some(tokenizer),
            std::slice::from_ref(&prompt),
            &config,
        )?;
        println!("{}", out.texts[0]);
        eprintln!(
            "{} prompt tokens in {:.1} ms, {} new tokens at {:.1} tokens/s",
            prompt.len(),
            out.prefill_seconds * 1e3,
            out.new_tokens,
            out.new_tokens as f64 / out.decode_seconds.max(1e-9)
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
    if let Err(err) = args.device.run(Generate(args)).and_then(|r| r) {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}
