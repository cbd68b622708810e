//! Loading a model (and its tokenizer) from a directory or hub id in one call.

use burn::prelude::*;
use burn::tensor::DType;
use tokenizers::Tokenizer;

use super::causal_lm::CausalLm;
use crate::hf::config::ModelConfig;
use crate::hf::hub::{resolve_model, ModelFiles};
use crate::hf::safetensors::Checkpoint;
use crate::hf::tokenizer::load_tokenizer;
use crate::Result;

/// A loaded model with its tokenizer and the files it came from.
#[derive(Debug)]
pub struct Pretrained<B: Backend> {
    /// The model, weights in the requested dtype.
    pub model: CausalLm<B>,
    /// The tokenizer, when `tokenizer.json` exists.
    pub tokenizer: Option<Tokenizer>,
    /// Where everything came from.
    pub files: ModelFiles,
    /// Checkpoint keys no parameter used (worth a warning).
    pub unused_keys: Vec<String>,
}

impl<B: Backend> Pretrained<B> {
    /// Loads `spec` (a local directory or hub id) onto `device`, weights converted to `dtype`.
    pub fn load(spec: &str, device: &B::Device, dtype: DType) -> Result<Self> {
        let files = resolve_model(spec)?;
        let config = ModelConfig::from_file(&files.config)?;
        let checkpoint = Checkpoint::open(&files.weights)?;
        let (model, unused_keys) =
            CausalLm::new(&config, device).load_checkpoint(&checkpoint, dtype)?;
        let tokenizer = files.tokenizer.as_ref().map(load_tokenizer).transpose()?;
        if let (Some(tok), Some(path)) = (&tokenizer, &files.tokenizer) {
            check_vocab(tok, &config, path)?;
        }
        Ok(Self {
            model,
            tokenizer,
            files,
            unused_keys,
        })
    }
}

/// The vocabulary size comes from the tokenizer, never a literal: every tokenizer id (special tokens
/// included) must have a row in the model's embedding.
pub fn check_vocab(
    tokenizer: &Tokenizer,
    config: &ModelConfig,
    path: &std::path::Path,
) -> Result<()> {
    let needed = tokenizer.get_vocab_size(true);
    if needed > config.vocab_size {
        return Err(crate::CoreError::InvalidConfig {
            path: path.into(),
            key: "vocab_size".into(),
            reason: format!(
                "the tokenizer has {needed} ids (special tokens included) but the model's vocab_size is {}",
                config.vocab_size
            ),
        });
    }
    Ok(())
}
