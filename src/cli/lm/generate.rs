//! `latent lm generate`: text from a causal LM through the KV cache.

use burn::prelude::*;
use burn::tensor::DType;
use latent_core::cli::{CommonArgs, Flag, JobResult};
use latent_core::hf::chat_template::{ChatMessage, ChatTemplate};
use latent_core::infer::{generate, GenerateConfig, SamplingConfig};
use latent_core::{parse_dtype, BackendJob, CoreError, Pretrained};

const JOB: &str = "latent lm generate";

/// Arguments of `latent lm generate`.
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// The common flags (`--device`, `--quiet`, `--dry-run` apply).
    #[command(flatten)]
    pub common: CommonArgs,
    /// Model directory or hub id (needs tokenizer.json).
    #[arg(long)]
    pub model: String,
    /// The prompt.
    #[arg(long)]
    pub prompt: String,
    /// Render the prompt with the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// A system message (with --chat).
    #[arg(long)]
    pub system: Option<String>,
    /// New tokens at most.
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// 0 = off.
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// 1 = off.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Seed of the sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop strings (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Compute dtype of the weights: f32, bf16 or f16.
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub dtype: DType,
}

impl GenerateArgs {
    /// Generates on `--device` (default cpu).
    pub fn run(self) -> JobResult {
        let uses = [Flag::Device, Flag::Quiet, Flag::DryRun];
        let Some(device) = self.common.start_on_device(JOB, &uses, &self)? else {
            return Ok(());
        };
        Ok(device.run(Generate(self))??)
    }
}

struct Generate(GenerateArgs);

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
        if args.common.quiet {
            return Ok(());
        }
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
