//! The collected data on disk: per question, N latent paths of a reasoner, in shards.
//!
//! A collection directory holds `metadata.json` ([`CollectionMeta`]) and, per shard `k`,
//! `shard-0000k.safetensors` (tensors `latents` `[paths, steps, hidden]`, `scores` `[paths]` and,
//! with Monte-Carlo labels, `step_values` `[paths, steps]`) and `shard-0000k.json`
//! ([`ShardRecords`]: the questions with their ids, gold and greedy answer, and per path the decoded
//! answer and its correctness). Shard `k` holds questions `k·q .. (k+1)·q` of the question file.

use std::path::{Path, PathBuf};

use latent_core::atomic::write_atomic;
use latent_core::hf::safetensors::{write_safetensors, Checkpoint, HostTensor, SaveDtype};
use serde::{Deserialize, Serialize};

use crate::collect::SamplingConfig;
use crate::{PrmError, Result};

/// `metadata.json` of a collection directory.
pub const METADATA_FILE: &str = "metadata.json";
/// The value of [`CollectionMeta::format`].
pub const PATHS_FORMAT: &str = "latent-prm-paths";
/// The value of [`CollectionMeta::version`].
pub const PATHS_VERSION: u32 = 1;

/// One question of a collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionRecord {
    /// Index in the question file (after the reasoner's preprocessing).
    pub index: usize,
    /// The question text.
    pub question: String,
    /// The gold answer as written.
    pub gold: String,
    /// The question's token ids as the reasoner read them (BOS first when it uses one).
    pub ids: Vec<u32>,
    /// The answer decoded without noise (the greedy baseline).
    pub greedy_answer: Option<String>,
    /// Whether the greedy answer is right.
    pub greedy_correct: bool,
}

/// One sampled latent path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathRecord {
    /// [`QuestionRecord::index`] of its question.
    pub question: usize,
    /// Its number among the question's paths.
    pub path: usize,
    /// The decoded text after the thoughts.
    pub output: String,
    /// The extracted answer (last number, normalised), for voting.
    pub answer: Option<String>,
    /// Whether the answer equals the gold.
    pub correct: bool,
}

/// `shard-0000k.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecords {
    /// The shard's questions.
    pub questions: Vec<QuestionRecord>,
    /// Its paths, question by question, in the row order of the tensors.
    pub paths: Vec<PathRecord>,
}

/// `metadata.json`: what was collected, how, and how the labels are distributed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionMeta {
    /// [`PATHS_FORMAT`].
    pub format: String,
    /// [`PATHS_VERSION`].
    pub version: u32,
    /// The reasoner's checkpoint directory.
    pub reasoner: PathBuf,
    /// The question file.
    pub questions_file: PathBuf,
    /// How paths were sampled.
    pub sampling: SamplingConfig,
    /// Continuous thoughts per path.
    pub latent_steps: usize,
    /// Width of each thought.
    pub hidden: usize,
    /// Questions the collection covers when complete.
    pub questions_planned: usize,
    /// Questions collected so far.
    pub questions: usize,
    /// Paths collected so far.
    pub paths: usize,
    /// Paths whose answer is right.
    pub correct_paths: usize,
    /// Questions whose greedy answer is right.
    pub greedy_correct: usize,
    /// Questions whose paths are all right (no ranking signal).
    pub all_right_questions: usize,
    /// Questions whose paths are all wrong (no ranking signal).
    pub all_wrong_questions: usize,
    /// `all_right_questions / questions`.
    pub all_right_share: f64,
    /// `all_wrong_questions / questions`.
    pub all_wrong_share: f64,
    /// Histogram of the path scores in ten bins of width 0.1 over [0, 1] (1.0 in the last).
    pub score_histogram: Vec<usize>,
    /// Histogram of the per-step Monte-Carlo values (empty without them).
    pub step_value_histogram: Vec<usize>,
    /// Shard stems in order (`shard-00000`, ...).
    pub shards: Vec<String>,
}

impl CollectionMeta {
    /// Checks format, version and that the counts add up.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let fail = |reason: String| Err(PrmError::format(path, reason));
        if self.format != PATHS_FORMAT || self.version != PATHS_VERSION {
            return fail(format!(
                "format {:?} version {} (expected {PATHS_FORMAT:?} version {PATHS_VERSION})",
                self.format, self.version
            ));
        }
        if self.paths != self.questions * self.sampling.paths_per_question {
            return fail(format!(
                "{} paths for {} questions of {} paths each",
                self.paths, self.questions, self.sampling.paths_per_question
            ));
        }
        if self.correct_paths > self.paths
            || self.all_right_questions + self.all_wrong_questions > self.questions
        {
            return fail("counts exceed their totals".into());
        }
        if self.score_histogram.iter().sum::<usize>() != self.paths {
            return fail("the score histogram does not count every path".into());
        }
        let expected_shards = self
            .questions
            .div_ceil(self.sampling.questions_per_shard.max(1));
        if self.shards.len() != expected_shards {
            return fail(format!(
                "{} shards listed for {} questions of {} per shard",
                self.shards.len(),
                self.questions,
                self.sampling.questions_per_shard
            ));
        }
        Ok(())
    }

    /// Reads and validates `dir/metadata.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(METADATA_FILE);
        if !path.exists() {
            return Err(PrmError::NoData { dir: dir.into() });
        }
        let meta: Self = latent_core::config_file::read_config(&path)?;
        meta.validate(&path)?;
        Ok(meta)
    }

    /// Writes `dir/metadata.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("metadata serialises");
        Ok(write_atomic(&dir.join(METADATA_FILE), text.as_bytes())?)
    }
}

/// Ten-bin histogram over [0, 1].
pub(crate) fn histogram(values: impl Iterator<Item = f32>) -> Vec<usize> {
    let mut bins = vec![0usize; 10];
    for v in values {
        bins[((v.clamp(0.0, 1.0) * 10.0) as usize).min(9)] += 1;
    }
    bins
}

/// The stem of shard `k`.
pub fn shard_stem(k: usize) -> String {
    format!("shard-{k:05}")
}

/// One shard's content in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Shard {
    /// Questions and paths.
    pub records: ShardRecords,
    /// `[paths, steps, hidden]`, row-major.
    pub latents: Vec<f32>,
    /// `[paths]`: the path's score (1.0 right, 0.0 wrong).
    pub scores: Vec<f32>,
    /// `[paths, steps]`: per-step Monte-Carlo values, when collected.
    pub step_values: Option<Vec<f32>>,
}

impl Shard {
    /// Writes the shard's tensors, then its records (the records file marks it complete).
    pub fn write(&self, dir: &Path, stem: &str, steps: usize, hidden: usize) -> Result<()> {
        let n = self.scores.len();
        let mut tensors = vec![
            (
                "latents".to_string(),
                HostTensor {
                    shape: vec![n, steps, hidden],
                    data: self.latents.clone(),
                },
            ),
            (
                "scores".to_string(),
                HostTensor {
                    shape: vec![n],
                    data: self.scores.clone(),
                },
            ),
        ];
        if let Some(values) = &self.step_values {
            tensors.push((
                "step_values".to_string(),
                HostTensor {
                    shape: vec![n, steps],
                    data: values.clone(),
                },
            ));
        }
        write_safetensors(
            &dir.join(format!("{stem}.safetensors")),
            &tensors,
            SaveDtype::F32,
        )?;
        let text = serde_json::to_string(&self.records).expect("records serialise");
        Ok(write_atomic(
            &dir.join(format!("{stem}.json")),
            text.as_bytes(),
        )?)
    }

    /// Reads shard `stem` of `dir`, checking its tensors against its records.
    pub fn read(dir: &Path, stem: &str, steps: usize, hidden: usize) -> Result<Self> {
        let json = dir.join(format!("{stem}.json"));
        let text = std::fs::read_to_string(&json).map_err(|e| PrmError::io(&json, e))?;
        let records: ShardRecords = serde_json::from_str(&text)
            .map_err(|e| PrmError::format(&json, format!("not a shard record file: {e}")))?;
        let file = dir.join(format!("{stem}.safetensors"));
        let tensors = Checkpoint::open(std::slice::from_ref(&file))?;
        let n = records.paths.len();
        let latents = tensors
            .read_shaped("latents", &[n, steps, hidden], "the latent paths")?
            .data;
        let scores = tensors.read_shaped("scores", &[n], "the path scores")?.data;
        let step_values = if tensors.contains("step_values") {
            Some(
                tensors
                    .read_shaped("step_values", &[n, steps], "the per-step values")?
                    .data,
            )
        } else {
            None
        };
        Ok(Self {
            records,
            latents,
            scores,
            step_values,
        })
    }
}

/// Every path of a collection directory in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct PathSet {
    /// The collection's metadata.
    pub meta: CollectionMeta,
    /// Its questions, in order.
    pub questions: Vec<QuestionRecord>,
    /// Its paths, question by question.
    pub paths: Vec<PathRecord>,
    /// `[paths, steps, hidden]`.
    pub latents: Vec<f32>,
    /// `[paths]`.
    pub scores: Vec<f32>,
    /// `[paths, steps]`, when collected.
    pub step_values: Option<Vec<f32>>,
}

impl PathSet {
    /// Loads every shard of `dir` (error [`PrmError::NoData`] when it holds none).
    pub fn load(dir: &Path) -> Result<Self> {
        let meta = CollectionMeta::read(dir)?;
        if meta.paths == 0 {
            return Err(PrmError::NoData { dir: dir.into() });
        }
        let mut set = Self {
            questions: Vec::new(),
            paths: Vec::new(),
            latents: Vec::new(),
            scores: Vec::new(),
            step_values: (meta.sampling.mc_rollouts > 0).then(Vec::new),
            meta,
        };
        for stem in set.meta.shards.clone() {
            let shard = Shard::read(dir, &stem, set.meta.latent_steps, set.meta.hidden)?;
            set.questions.extend(shard.records.questions);
            set.paths.extend(shard.records.paths);
            set.latents.extend(shard.latents);
            set.scores.extend(shard.scores);
            if let (Some(all), Some(values)) = (set.step_values.as_mut(), shard.step_values) {
                all.extend(values);
            }
        }
        if set.paths.len() != set.meta.paths {
            return Err(PrmError::format(
                dir.join(METADATA_FILE),
                format!(
                    "metadata counts {} paths, the shards hold {}",
                    set.meta.paths,
                    set.paths.len()
                ),
            ));
        }
        Ok(set)
    }

    /// Latent steps per path.
    pub fn steps(&self) -> usize {
        self.meta.latent_steps
    }

    /// Width of a thought.
    pub fn hidden(&self) -> usize {
        self.meta.hidden
    }

    /// The latents of path `i`, `[steps · hidden]`.
    pub fn latent(&self, i: usize) -> &[f32] {
        let w = self.steps() * self.hidden();
        &self.latents[i * w..(i + 1) * w]
    }

    /// The per-step values of path `i`, when collected.
    pub fn step_value(&self, i: usize) -> Option<&[f32]> {
        let s = self.steps();
        self.step_values.as_ref().map(|v| &v[i * s..(i + 1) * s])
    }

    /// Path indices per question, in question order.
    pub fn groups(&self) -> Vec<Vec<usize>> {
        let n = self.meta.sampling.paths_per_question;
        (0..self.questions.len())
            .map(|q| (q * n..(q + 1) * n).collect())
            .collect()
    }

    /// The question of path `i` (position in [`PathSet::questions`]).
    pub fn question_of(&self, i: usize) -> &QuestionRecord {
        &self.questions[i / self.meta.sampling.paths_per_question]
    }
}
