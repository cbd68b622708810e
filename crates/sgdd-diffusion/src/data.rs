//! Examples for both phases: source text (encoded into the semantic vector), target text and its
//! token ids (`<s> ... </s>` padded with `<pad>` to `max_len`; position 0 is never masked, the pads
//! after `</s>` are learned so decoding can start from a fully masked `max_len` sequence).
//! Semantic vectors are computed once with the frozen encoder and cached next to the run.

use std::path::Path;

use burn::prelude::*;
use latent_core::hf::safetensors::{write_safetensors, Checkpoint, HostTensor, SaveDtype};
use latent_datasets::batch::{shuffled_indices, train_valid_split};
use latent_datasets::{qqp, wiki, ReadOptions};

use crate::config::{expand_path, RunConfig, Task};
use crate::diffusion::SgddBatch;
use crate::encoder::SemanticEncoder;
use crate::Result;

/// A source/target pair (Wikipedia: the same sentence twice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// Encoded into the semantic vector.
    pub src: String,
    /// Decoded.
    pub trg: String,
}

/// Reads the pairs of a data file for `task`.
pub fn read_pairs(task: Task, file: &str, config: &RunConfig) -> Result<Vec<Pair>> {
    let path = expand_path(file)?;
    Ok(match task {
        Task::WikiReconstruction => {
            let filter = wiki::Wiki::words(config.data.min_words, config.data.max_words);
            wiki::load(&path, filter, ReadOptions::strict())?
                .records
                .into_iter()
                .map(|s| Pair {
                    src: s.clone(),
                    trg: s,
                })
                .collect()
        }
        Task::QqpParaphrase => qqp::load_jsonl(&path, ReadOptions::strict())?
            .records
            .into_iter()
            .map(|p| Pair {
                src: p.src,
                trg: p.trg,
            })
            .collect(),
    })
}

/// Tokenized examples with their semantic vectors.
#[derive(Debug, Clone, Default)]
pub struct Examples {
    /// The pairs kept.
    pub pairs: Vec<Pair>,
    /// Target ids, each `max_len` long.
    pub targets: Vec<Vec<u32>>,
    /// Semantic vector of each source.
    pub cond: Vec<Vec<f32>>,
    /// Pairs dropped because the target is longer than `max_len` tokens.
    pub dropped: usize,
    /// The padding id of the targets.
    pub pad: u32,
}

/// FNV-1a over the texts and the encoder spec: the key of the semantic-vector cache.
fn fingerprint(encoder: &str, texts: &[String]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for s in std::iter::once(encoder).chain(texts.iter().map(String::as_str)) {
        for b in s.bytes().chain([0xff]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

/// Semantic vectors of `texts`, read from `cache_dir` when a cache with the same fingerprint exists.
pub fn semantic_vectors<B: Backend>(
    encoder: &SemanticEncoder<B>,
    encoder_spec: &str,
    texts: &[String],
    batch_size: usize,
    cache_dir: Option<&Path>,
    device: &B::Device,
) -> Result<Vec<Vec<f32>>> {
    let key = fingerprint(encoder_spec, texts);
    let path = cache_dir.map(|d| d.join(format!("semantic-{key:016x}.safetensors")));
    if let Some(path) = path.as_ref().filter(|p| p.is_file()) {
        if let Some(t) = Checkpoint::open(std::slice::from_ref(path))?.read("vectors")? {
            let w = t.shape[1];
            return Ok(t.data.chunks(w).map(<[f32]>::to_vec).collect());
        }
    }
    let vectors = encoder.embed_texts(texts, batch_size, device)?;
    if let Some(path) = path {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| latent_core::CoreError::io(dir, e))?;
        }
        let w = encoder.width();
        let host = HostTensor {
            shape: vec![vectors.len(), w],
            data: vectors.iter().flatten().copied().collect(),
        };
        write_safetensors(&path, &[("vectors".into(), host)], SaveDtype::F32)?;
    }
    Ok(vectors)
}

impl Examples {
    /// Tokenizes `pairs`' targets (dropping those over `max_len` tokens) and encodes their sources.
    pub fn build<B: Backend>(
        pairs: Vec<Pair>,
        encoder: &SemanticEncoder<B>,
        config: &RunConfig,
        cache_dir: Option<&Path>,
        device: &B::Device,
    ) -> Result<Self> {
        let len = config.model.max_len;
        let mut kept = Vec::new();
        let mut targets = Vec::new();
        let mut dropped = 0;
        for pair in pairs {
            let mut ids = encoder.tokenize(&pair.trg)?;
            if ids.len() > len {
                dropped += 1;
                continue;
            }
            ids.resize(len, encoder.special.pad);
            targets.push(ids);
            kept.push(pair);
        }
        let sources: Vec<String> = kept.iter().map(|p| p.src.clone()).collect();
        let cond = semantic_vectors(
            encoder,
            &config.encoder_path()?,
            &sources,
            config.train.encode_batch_size,
            cache_dir,
            device,
        )?;
        Ok(Self {
            pairs: kept,
            targets,
            cond,
            dropped,
            pad: encoder.special.pad,
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The batch of examples `indices`; `seed` drives its corruption.
    pub fn batch(&self, indices: &[usize], seed: u64) -> SgddBatch {
        let len = self.targets.first().map_or(0, Vec::len);
        let cond_dim = self.cond.first().map_or(0, Vec::len);
        SgddBatch {
            batch: indices.len(),
            len,
            targets: indices
                .iter()
                .flat_map(|&i| self.targets[i].iter().copied())
                .collect(),
            maskable: indices
                .iter()
                .flat_map(|_| (0..len).map(|p| p > 0))
                .collect(),
            cond: indices
                .iter()
                .flat_map(|&i| self.cond[i].iter().copied())
                .collect(),
            cond_dim,
            pad: self.pad,
            seed,
            first_row: 0,
            whole: None,
        }
    }

    /// The batches of one epoch: shuffled with `(seed, epoch)` when `shuffle`, each with its own
    /// corruption seed (a function of `seed`, `epoch` and the batch index).
    pub fn epoch_batches(
        &self,
        batch_size: usize,
        seed: u64,
        epoch: usize,
        shuffle: bool,
    ) -> Vec<SgddBatch> {
        let order = if shuffle {
            shuffled_indices(
                self.len(),
                seed ^ (epoch as u64).wrapping_mul(0x9e3779b97f4a7c15),
            )
        } else {
            (0..self.len()).collect()
        };
        order
            .chunks(batch_size.max(1))
            .enumerate()
            .map(|(i, chunk)| {
                let s = seed
                    .wrapping_mul(0x2545f4914f6cdd1d)
                    .wrapping_add((epoch as u64) << 32)
                    .wrapping_add(i as u64);
                self.batch(chunk, s)
            })
            .collect()
    }
}

/// The pairs of a run: (train, held-out). The held-out part is `valid_fraction` of `train_file`
/// (seeded split), capped at `max_valid`; training pairs are capped at `max_train`.
pub fn split_pairs(config: &RunConfig) -> Result<(Vec<Pair>, Vec<Pair>)> {
    let pairs = read_pairs(config.task, &config.data.train_file, config)?;
    let (mut train, mut valid) =
        train_valid_split(pairs, config.data.valid_fraction, config.data.seed)?;
    if config.data.max_train > 0 {
        train.truncate(config.data.max_train);
    }
    if config.data.max_valid > 0 {
        valid.truncate(config.data.max_valid);
    }
    Ok((train, valid))
}

/// The test pairs of a run: `test_file` when set, else the held-out split.
pub fn test_pairs(config: &RunConfig) -> Result<Vec<Pair>> {
    match &config.data.test_file {
        Some(file) => read_pairs(config.task, file, config),
        None => Ok(split_pairs(config)?.1),
    }
}
