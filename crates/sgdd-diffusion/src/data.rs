//! Examples for both phases: source text (encoded into the semantic vector), target text and its
//! token ids (`<s> ... </s>` padded with `<pad>` to `max_len`; position 0 is never masked, the pads
//! after `</s>` are learned so decoding can start from a fully masked `max_len` sequence).
//! Semantic vectors are computed once with the frozen encoder and cached next to the run.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use burn::prelude::*;
use latent_core::hf::safetensors::{write_safetensors, Checkpoint, HostTensor, SaveDtype};
use latent_datasets::batch::{shuffled_indices, train_valid_split};
use latent_datasets::sentences::split_sentences;
use latent_datasets::{gsm8k, qqp, wiki, ReadOptions};
use serde::Serialize;

use crate::config::{expand_path, RunConfig, Task, TextFormat, TextSource};
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

/// Reads the pairs of a data file for `task` (Wikipedia: `file`'s lines only, split, filtered and
/// de-duplicated as [`reconstruction_corpus`] does; `data.extra_files` are not read here).
pub fn read_pairs(task: Task, file: &str, config: &RunConfig) -> Result<Vec<Pair>> {
    Ok(match task {
        Task::WikiReconstruction => {
            let source = TextSource {
                format: TextFormat::Lines,
                file: file.to_string(),
            };
            sentence_pairs(reconstruction_corpus(&[source], config)?.0)
        }
        Task::QqpParaphrase => qqp::load_jsonl(expand_path(file)?, ReadOptions::strict())?
            .records
            .into_iter()
            .map(|p| Pair {
                src: p.src,
                trg: p.trg,
            })
            .collect(),
    })
}

/// Reconstruction pairs: each sentence as its own source and target.
fn sentence_pairs(sentences: Vec<String>) -> Vec<Pair> {
    sentences
        .into_iter()
        .map(|s| Pair {
            src: s.clone(),
            trg: s,
        })
        .collect()
}

/// How many texts a source held and how many of its sentences were kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceCount {
    /// The file as configured.
    pub file: String,
    /// How it was read.
    pub format: TextFormat,
    /// Texts read (lines, questions).
    pub texts: usize,
    /// Sentences cut from them (each text is one sentence without `data.split_sentences`).
    pub sentences: usize,
    /// Sentences kept: within the word limits and not seen before in an earlier text.
    pub kept: usize,
}

/// What a reconstruction corpus holds: per source, the filter and de-duplication counts, and the
/// word lengths kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CorpusReport {
    /// Each source, in the order read.
    pub sources: Vec<SourceCount>,
    /// Sentences outside `data.min_words..=data.max_words`.
    pub outside_word_limits: usize,
    /// Repeats of a sentence already kept (exact text after trimming).
    pub duplicates: usize,
    /// Sentences kept.
    pub kept: usize,
    /// Kept sentences per word count (whitespace-separated words).
    pub words: BTreeMap<usize, usize>,
}

impl CorpusReport {
    /// One line for a log: totals per source and the word-length quartiles.
    pub fn summary(&self) -> String {
        let sources: Vec<String> = self
            .sources
            .iter()
            .map(|s| {
                format!(
                    "{} ({:?}): {} texts, {} sentences, {} kept",
                    s.file, s.format, s.texts, s.sentences, s.kept
                )
            })
            .collect();
        let quantile = |q: f64| {
            let target = (q * self.kept.saturating_sub(1) as f64).round() as usize;
            let mut seen = 0;
            for (&words, &count) in &self.words {
                seen += count;
                if seen > target {
                    return words;
                }
            }
            0
        };
        format!(
            "corpus: {} sentences kept ({} outside the word limits, {} repeats dropped); words \
             min {} / quartiles {} {} {} / max {}; {}",
            self.kept,
            self.outside_word_limits,
            self.duplicates,
            quantile(0.0),
            quantile(0.25),
            quantile(0.5),
            quantile(0.75),
            quantile(1.0),
            sources.join("; ")
        )
    }
}

/// The texts of one source.
fn source_texts(source: &TextSource) -> Result<Vec<String>> {
    let path = expand_path(&source.file)?;
    let strict = ReadOptions::strict();
    Ok(match source.format {
        TextFormat::Lines => wiki::load(&path, wiki::Wiki::default(), strict)?.records,
        TextFormat::Gsm8kQuestions => gsm8k::load(&path, strict)?
            .records
            .into_iter()
            .map(|r| r.question)
            .collect(),
        TextFormat::QqpQuestions => qqp::load_jsonl(&path, strict)?
            .records
            .into_iter()
            .flat_map(|p| [p.src, p.trg])
            .collect(),
    })
}

/// The sentences of `sources`, in reading order: each text split into sentences when
/// `data.split_sentences`, kept when it has `data.min_words..=data.max_words` words, and only at
/// its first occurrence, so that a held-out split of them is disjoint by sentence.
pub fn reconstruction_corpus(
    sources: &[TextSource],
    config: &RunConfig,
) -> Result<(Vec<String>, CorpusReport)> {
    let data = &config.data;
    let mut seen = HashSet::new();
    let mut kept = Vec::new();
    let mut report = CorpusReport::default();
    for source in sources {
        let texts = source_texts(source)?;
        let mut count = SourceCount {
            file: source.file.clone(),
            format: source.format,
            texts: texts.len(),
            sentences: 0,
            kept: 0,
        };
        for text in &texts {
            let pieces: Vec<&str> = if data.split_sentences {
                split_sentences(text).collect()
            } else {
                vec![text.trim()]
            };
            for sentence in pieces.into_iter().filter(|s| !s.is_empty()) {
                count.sentences += 1;
                let words = sentence.split_whitespace().count();
                if words < data.min_words || words > data.max_words {
                    report.outside_word_limits += 1;
                } else if !seen.insert(sentence.to_string()) {
                    report.duplicates += 1;
                } else {
                    count.kept += 1;
                    *report.words.entry(words).or_insert(0) += 1;
                    kept.push(sentence.to_string());
                }
            }
        }
        report.kept += count.kept;
        report.sources.push(count);
    }
    Ok((kept, report))
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

/// The pairs of a run, split, with the corpus report of a reconstruction run.
#[derive(Debug, Clone)]
pub struct SplitData {
    /// Training pairs (capped at `data.max_train`).
    pub train: Vec<Pair>,
    /// Held-out pairs (capped at `data.max_valid`).
    pub valid: Vec<Pair>,
    /// Sources, filters and lengths of the sentences (`wiki_reconstruction`).
    pub corpus: Option<CorpusReport>,
}

/// The pairs of a run: the held-out part is `valid_fraction` of the data (seeded split), capped at
/// `max_valid`; training pairs are capped at `max_train`. Reconstruction reads `train_file` and
/// `extra_files` into one de-duplicated corpus ([`reconstruction_corpus`]), so no held-out
/// sentence is also a training sentence.
pub fn split_data(config: &RunConfig) -> Result<SplitData> {
    let (pairs, corpus) = match config.task {
        Task::WikiReconstruction => {
            let mut sources = vec![TextSource {
                format: TextFormat::Lines,
                file: config.data.train_file.clone(),
            }];
            sources.extend(config.data.extra_files.iter().cloned());
            let (sentences, report) = reconstruction_corpus(&sources, config)?;
            (sentence_pairs(sentences), Some(report))
        }
        Task::QqpParaphrase => (
            read_pairs(config.task, &config.data.train_file, config)?,
            None,
        ),
    };
    let (mut train, mut valid) =
        train_valid_split(pairs, config.data.valid_fraction, config.data.seed)?;
    if config.data.max_train > 0 {
        train.truncate(config.data.max_train);
    }
    if config.data.max_valid > 0 {
        valid.truncate(config.data.max_valid);
    }
    Ok(SplitData {
        train,
        valid,
        corpus,
    })
}

/// [`split_data`]'s (train, held-out) pairs.
pub fn split_pairs(config: &RunConfig) -> Result<(Vec<Pair>, Vec<Pair>)> {
    let split = split_data(config)?;
    Ok((split.train, split.valid))
}

/// The test pairs of a run: `test_file` when set, else the held-out split.
pub fn test_pairs(config: &RunConfig) -> Result<Vec<Pair>> {
    match &config.data.test_file {
        Some(file) => read_pairs(config.task, file, config),
        None => Ok(split_pairs(config)?.1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reconstruction config over files written to a fresh temporary directory.
    fn corpus_config(files: &[(&str, &str)]) -> (RunConfig, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "sgdd-corpus-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let mut config: RunConfig =
            serde_json::from_str(r#"{"task": "wiki_reconstruction", "encoder": "x"}"#).unwrap();
        config.data.train_file = dir.join("wiki.txt").display().to_string();
        config.data.min_words = 3;
        config.data.max_words = 6;
        (config, dir)
    }

    #[test]
    fn the_corpus_splits_filters_and_keeps_each_sentence_once() {
        let wiki = "The cat sat down. A dog ran past it.\nThe cat sat down.\nToo short\n\
                    one two three four five six seven eight\n";
        let gsm8k = concat!(
            r#"{"question": "Tom has five red apples. How many are left now?", "#,
            r##""answer": "5 - 0 = 5\n#### 5"}"##,
            "\n"
        );
        let qqp = "{\"src\": \"A dog ran past it.\", \"trg\": \"Why is the sky blue?\"}\n";
        let (mut config, dir) = corpus_config(&[
            ("wiki.txt", wiki),
            ("gsm8k.jsonl", gsm8k),
            ("qqp.jsonl", qqp),
        ]);
        config.data.split_sentences = true;
        let source = |format, name: &str| TextSource {
            format,
            file: dir.join(name).display().to_string(),
        };
        config.data.extra_files = vec![
            source(TextFormat::Gsm8kQuestions, "gsm8k.jsonl"),
            source(TextFormat::QqpQuestions, "qqp.jsonl"),
        ];
        let mut sources = vec![source(TextFormat::Lines, "wiki.txt")];
        sources.extend(config.data.extra_files.clone());
        let (sentences, report) = reconstruction_corpus(&sources, &config).unwrap();
        assert_eq!(
            sentences,
            [
                "The cat sat down.",
                "A dog ran past it.",
                "Tom has five red apples.",
                "How many are left now?",
                "Why is the sky blue?",
            ]
        );
        let kept: Vec<(usize, usize, usize)> = report
            .sources
            .iter()
            .map(|s| (s.texts, s.sentences, s.kept))
            .collect();
        assert_eq!(kept, [(4, 5, 2), (1, 2, 2), (2, 2, 1)]);
        assert_eq!((report.outside_word_limits, report.duplicates), (2, 2));
        assert_eq!(report.words.values().sum::<usize>(), report.kept);
        assert_eq!(report.words[&5], 4);

        // Unsplit, a line is one text: the two-sentence line has 8 words and is filtered out.
        config.data.split_sentences = false;
        let (whole, _) = reconstruction_corpus(&sources[..1], &config).unwrap();
        assert_eq!(whole, ["The cat sat down."]);

        // The held-out split shares no sentence with training, however often a sentence repeats.
        config.data.split_sentences = true;
        config.data.valid_fraction = 0.4;
        let split = split_data(&config).unwrap();
        assert_eq!(split.train.len() + split.valid.len(), 5);
        assert!(!split.valid.is_empty());
        assert!(split.valid.iter().all(|v| !split.train.contains(v)));
        assert_eq!(split.corpus.unwrap().kept, 5);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
