//! The frozen semantic encoder: a BERT-family model with its tokenizer, producing the
//! attention-masked mean of the last hidden state (sentence-transformers' mean pooling, not
//! normalised). It runs on a plain (non-autodiff) backend, so it is frozen by construction.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use latent_core::hf::hub::resolve_model;
use latent_core::hf::safetensors::Checkpoint;
use latent_core::hf::tokenizer::load_tokenizer;
use tokenizers::{Tokenizer, TruncationParams};

use super::bert::BertModel;
use super::config::EncoderConfig;
use crate::{Result, SgddError};

/// The special tokens the diffusion model uses, read from the tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialTokens {
    /// The absorbing token (`<mask>` / `[MASK]`).
    pub mask: u32,
    /// Padding (`<pad>` / `[PAD]`).
    pub pad: u32,
    /// Sequence start (`<s>` / `[CLS]`).
    pub bos: u32,
    /// Sequence end (`</s>` / `[SEP]`).
    pub eos: u32,
    /// The unknown token (`<unk>` / `[UNK]`), where the vocabulary has one.
    pub unk: Option<u32>,
}

/// Encoder + tokenizer.
#[derive(Debug)]
pub struct SemanticEncoder<B: Backend> {
    /// The network.
    pub model: BertModel<B>,
    /// Its config.
    pub config: EncoderConfig,
    /// Its tokenizer (padding off, truncation at the position-table limit).
    pub tokenizer: Tokenizer,
    /// Special token ids.
    pub special: SpecialTokens,
    /// Where `config.json` was found.
    pub config_path: PathBuf,
    tokenizer_path: PathBuf,
}

fn token_id(tokenizer: &Tokenizer, path: &Path, candidates: &[&str]) -> Result<u32> {
    candidates
        .iter()
        .find_map(|t| tokenizer.token_to_id(t))
        .ok_or_else(|| SgddError::Tokenizer {
            path: path.into(),
            message: format!("none of the tokens {candidates:?} is in the vocabulary"),
        })
}

/// Attention-masked mean over the sequence. `hidden` `[batch, seq, width]`, `mask` `[batch, seq]`
/// (1 = token) → `[batch, width]` (rows with no token give 0).
pub fn masked_mean<B: Backend>(hidden: Tensor<B, 3>, mask: Tensor<B, 2, Int>) -> Tensor<B, 2> {
    let [b, s, w] = hidden.dims();
    let m = mask.float();
    // Counts from the [batch, seq] mask: reducing a broadcast (expanded) view trips Flex.
    let count = m.clone().sum_dim(1).clamp_min(1e-9).expand([b, w]);
    let sum = (hidden * m.reshape([b, s, 1]).expand([b, s, w]))
        .sum_dim(1)
        .reshape([b, w]);
    sum / count
}

impl<B: Backend> SemanticEncoder<B> {
    /// Loads an encoder from a directory or hub id (`config.json`, `model.safetensors`,
    /// `tokenizer.json`); hub ids go through the local cache and honour `HF_HUB_OFFLINE`.
    pub fn load(spec: &str, device: &B::Device) -> Result<Self> {
        let files = resolve_model(spec)?;
        let config = EncoderConfig::from_file(&files.config)?;
        let checkpoint = Checkpoint::open(&files.weights)?;
        let model = BertModel::load(&config, &checkpoint, device)?;
        let tokenizer_path = files
            .tokenizer
            .clone()
            .unwrap_or_else(|| files.config.with_file_name("tokenizer.json"));
        let mut tokenizer = load_tokenizer(&tokenizer_path)?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: config.max_tokens(),
                ..Default::default()
            }))
            .map_err(|e| SgddError::Tokenizer {
                path: tokenizer_path.clone(),
                message: e.to_string(),
            })?;
        let special = SpecialTokens {
            mask: token_id(&tokenizer, &tokenizer_path, &["<mask>", "[MASK]"])?,
            pad: config.pad_token_id,
            bos: token_id(&tokenizer, &tokenizer_path, &["<s>", "[CLS]"])?,
            eos: token_id(&tokenizer, &tokenizer_path, &["</s>", "[SEP]"])?,
            unk: ["<unk>", "[UNK]"]
                .iter()
                .find_map(|t| tokenizer.token_to_id(t)),
        };
        let vocab = tokenizer.get_vocab_size(true);
        if vocab > config.vocab_size {
            return Err(SgddError::config(
                files.config.display().to_string(),
                "vocab_size",
                format!(
                    "{} is smaller than the tokenizer's {vocab} tokens ({})",
                    config.vocab_size,
                    tokenizer_path.display()
                ),
            ));
        }
        Ok(Self {
            model,
            config,
            tokenizer,
            special,
            config_path: files.config,
            tokenizer_path,
        })
    }

    /// Token ids of `text` with the tokenizer's special tokens (`[CLS] ... [SEP]`, `<s> ... </s>`).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer
            .encode(text, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| SgddError::Tokenizer {
                path: self.tokenizer_path.clone(),
                message: format!("{e} (text {text:?})"),
            })
    }

    /// Text of `ids`, special tokens skipped.
    pub fn detokenize(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map(|s| s.trim().to_string())
            .map_err(|e| SgddError::Tokenizer {
                path: self.tokenizer_path.clone(),
                message: e.to_string(),
            })
    }

    /// Right-pads rows into `(ids, positions, mask)` tensors `[batch, seq]`.
    pub fn batch_tensors(
        &self,
        rows: &[Vec<u32>],
        device: &B::Device,
    ) -> (Tensor<B, 2, Int>, Tensor<B, 2, Int>, Tensor<B, 2, Int>) {
        let s = rows.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let (mut ids, mut pos, mut mask) = (Vec::new(), Vec::new(), Vec::new());
        for row in rows {
            let mut padded: Vec<u32> = row.clone();
            padded.resize(s, self.special.pad);
            pos.extend(self.config.position_ids(&padded));
            // The mask comes from the row length, not from the pad id: a pad id inside the text
            // would otherwise be dropped.
            mask.extend((0..s).map(|i| i64::from(i < row.len())));
            ids.extend(padded.iter().map(|&i| i as i64));
        }
        let b = rows.len();
        let t = |v: Vec<i64>| Tensor::<B, 2, Int>::from_data(TensorData::new(v, [b, s]), device);
        (t(ids), t(pos), t(mask))
    }

    /// Last hidden state `[batch, seq, hidden]` and mask `[batch, seq]` of tokenized rows.
    pub fn hidden(
        &self,
        rows: &[Vec<u32>],
        device: &B::Device,
    ) -> (Tensor<B, 3>, Tensor<B, 2, Int>) {
        let (ids, pos, mask) = self.batch_tensors(rows, device);
        (self.model.forward(ids, pos, mask.clone()), mask)
    }

    /// Sentence embeddings `[batch, hidden]` of tokenized rows (masked mean, not normalised).
    pub fn embed_ids(&self, rows: &[Vec<u32>], device: &B::Device) -> Tensor<B, 2> {
        let (h, mask) = self.hidden(rows, device);
        masked_mean(h, mask)
    }

    /// Sentence embeddings of texts, in batches of `batch_size`, as host rows.
    pub fn embed_texts(
        &self,
        texts: &[String],
        batch_size: usize,
        device: &B::Device,
    ) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(batch_size.max(1)) {
            let rows = chunk
                .iter()
                .map(|t| self.tokenize(t))
                .collect::<Result<Vec<_>>>()?;
            let e = self.embed_ids(&rows, device);
            let w = e.dims()[1];
            let data: Vec<f32> = e.into_data().convert::<f32>().into_vec().expect("f32");
            out.extend(data.chunks(w).map(<[f32]>::to_vec));
        }
        Ok(out)
    }

    /// Hidden width (the semantic vector's size).
    pub fn width(&self) -> usize {
        self.config.hidden_size
    }
}
