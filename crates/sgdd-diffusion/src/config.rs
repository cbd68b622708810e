//! Run configs (`configs/sgdd/*.yaml`): task, encoder, decoder sizes, data, training and decoding,
//! read with latent-core's [`read_config`] (unknown keys are errors with "did you mean") and
//! validated before any work starts; `--set key.path=value` overrides are applied on top.

use std::path::{Path, PathBuf};

use latent_core::config_file::{apply_overrides, read_config};
use latent_core::train::{first_problem, Expect, Precision, ScheduleKind};
use serde::{Deserialize, Serialize};

use crate::decoder::DecoderConfig;
use crate::diffusion::LossKind;
use crate::maskgit::DecodeConfig;
use crate::{Result, SgddError};

/// What is decoded from what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Phase 1: encode a Wikipedia sentence, decode the same sentence.
    WikiReconstruction,
    /// Phase 2: encode a QQP question, decode its paraphrase.
    QqpParaphrase,
}

/// Data files and filters. Paths may start with `$LATENT_DATA_DIR/` or `$LATENT_MODELS_DIR/`, or
/// with `sample:` for the samples shipped in `crates/datasets/data/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Training file (Wikipedia: one sentence per line; QQP: JSON lines `{"src", "trg"}`).
    pub train_file: String,
    /// Test file for `sgdd_eval`; `None`: the held-out split of `train_file`.
    pub test_file: Option<String>,
    /// Fraction of `train_file` held out for validation.
    pub valid_fraction: f64,
    /// Cap on held-out examples (0 = no cap).
    pub max_valid: usize,
    /// Cap on training examples (0 = no cap).
    pub max_train: usize,
    /// Fewest words per sentence (Wikipedia).
    pub min_words: usize,
    /// Most words per sentence (Wikipedia).
    pub max_words: usize,
    /// Seed of the split and the shuffles.
    pub seed: u64,
    /// More text for reconstruction (`wiki_reconstruction` only): each source's texts join
    /// `train_file`'s lines before sentence splitting, the word filter and de-duplication.
    pub extra_files: Vec<TextSource>,
    /// Split every text into sentences (Unicode sentence boundaries,
    /// `latent_datasets::sentences`) before the word filter (`wiki_reconstruction` only).
    pub split_sentences: bool,
}

/// A file of text for reconstruction and how to read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSource {
    /// How the file holds its texts.
    pub format: TextFormat,
    /// The file (`$LATENT_DATA_DIR/`, `$LATENT_MODELS_DIR/` and `sample:` prefixes expanded).
    pub file: String,
}

/// The text formats a reconstruction corpus reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextFormat {
    /// One text per line (Wikipedia, SimCSE's wiki1m layout).
    Lines,
    /// The `question` field of GSM8K JSON lines.
    Gsm8kQuestions,
    /// Both questions (`src` and `trg`) of QQP JSON lines.
    QqpQuestions,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            train_file: "$LATENT_DATA_DIR/wiki/wiki_sample.txt".into(),
            test_file: None,
            valid_fraction: 0.05,
            max_valid: 0,
            max_train: 0,
            min_words: 3,
            max_words: 40,
            seed: 0,
            extra_files: Vec::new(),
            split_sentences: false,
        }
    }
}

/// Optimisation and checkpointing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Output directory (checkpoints, logs, samples).
    pub out_dir: PathBuf,
    /// Passes over the training data.
    pub epochs: usize,
    /// Training micro-batch size.
    pub batch_size: usize,
    /// Validation batch size (larger than training: no gradients).
    pub eval_batch_size: usize,
    /// Micro-batches per update.
    pub accumulation: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW weight decay (not on biases and norms).
    pub weight_decay: f64,
    /// Warm-up fraction of the updates.
    pub warmup_ratio: f64,
    /// Learning-rate shape after warm-up.
    pub schedule: ScheduleKind,
    /// Global-norm clipping (`None`: off).
    pub max_grad_norm: Option<f64>,
    /// Training loss.
    pub loss: LossKind,
    /// Probability of replacing a row's semantic vector by the null vector.
    pub cfg_prob: f64,
    /// Seed of the masks, times and guidance dropout.
    pub seed: u64,
    /// Periodic checkpoint every this many updates (0 = only per epoch, best and final).
    pub checkpoint_every: usize,
    /// Periodic checkpoints kept.
    pub keep_last: usize,
    /// Held-out examples decoded at each validation for EM/BLEU (0 = loss only).
    pub eval_generate: usize,
    /// Metric that selects the `best` checkpoint (a logged key).
    pub best_metric: String,
    /// Batch size when precomputing semantic vectors with the encoder.
    pub encode_batch_size: usize,
    /// Training numerics: `f32`, `bf16` or `f16` (bf16/f16: f32 master weights and optimizer state;
    /// see docs/training.md).
    pub precision: Precision,
    /// Activation (gradient) checkpointing: train on Burn's `Autodiff<B, BalancedCheckpointing>`,
    /// which recomputes the outputs of element-wise operations in the backward pass instead of
    /// keeping them (`latent_core::train::autodiff`; memory and time in docs/performance.md).
    pub checkpointing: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            out_dir: "runs/sgdd".into(),
            epochs: 10,
            batch_size: 32,
            eval_batch_size: 64,
            accumulation: 1,
            lr: 3e-4,
            weight_decay: 0.01,
            warmup_ratio: 0.05,
            schedule: ScheduleKind::Cosine,
            max_grad_norm: Some(1.0),
            loss: LossKind::MaskedCe,
            cfg_prob: 0.1,
            seed: 0,
            checkpoint_every: 0,
            keep_last: 2,
            eval_generate: 0,
            best_metric: "valid/loss".into(),
            encode_batch_size: 64,
            precision: Precision::F32,
            checkpointing: false,
        }
    }
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Phase.
    pub task: Task,
    /// Encoder directory or hub id (RoBERTa-base by default; `$LATENT_MODELS_DIR/...` expanded).
    pub encoder: String,
    /// Decoder sizes.
    #[serde(default)]
    pub model: DecoderConfig,
    /// Data.
    #[serde(default)]
    pub data: DataConfig,
    /// Training.
    #[serde(default)]
    pub train: TrainConfig,
    /// Decoding.
    #[serde(default)]
    pub decode: DecodeConfig,
}

/// Expands `$LATENT_DATA_DIR/`, `$LATENT_MODELS_DIR/` and `sample:` prefixes.
pub fn expand_path(spec: &str) -> Result<String> {
    for var in ["LATENT_DATA_DIR", "LATENT_MODELS_DIR"] {
        if let Some(rest) = spec.strip_prefix(&format!("${var}/")) {
            let base = std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    SgddError::config(
                        "environment",
                        var,
                        format!("is not set (needed for {spec})"),
                    )
                })?;
            return Ok(Path::new(&base).join(rest).display().to_string());
        }
    }
    if let Some(rest) = spec.strip_prefix("sample:") {
        return Ok(latent_datasets::data_dir::sample(rest)
            .display()
            .to_string());
    }
    Ok(spec.to_string())
}

impl RunConfig {
    /// Reads and validates a YAML/JSON config, then applies `overrides` (`key.path=value`).
    pub fn load(path: impl AsRef<Path>, overrides: &[String]) -> Result<Self> {
        let path = path.as_ref();
        let config: Self = read_config(path)?;
        let config = config.with_overrides(overrides)?;
        config.validate(&path.display().to_string(), overrides)?;
        Ok(config)
    }

    /// Applies `key.path=value` overrides ([`latent_core::config_file::apply_overrides`]).
    pub fn with_overrides(self, overrides: &[String]) -> Result<Self> {
        Ok(apply_overrides(&self, overrides)?)
    }

    /// Checks values before any work starts; errors name the key and where its value comes from
    /// (`source`'s line, or the one of `overrides` that sets it).
    pub fn validate(&self, source: &str, overrides: &[String]) -> Result<()> {
        self.model.validate(source)?;
        let bad = |key: &str, reason: String| {
            SgddError::config(
                latent_core::config_file::key_location(Path::new(source), overrides, key),
                key,
                reason,
            )
        };
        let t = &self.train;
        if let Some((key, reason)) = first_problem(&[
            ("train.epochs", Expect::Count(t.epochs)),
            ("train.batch_size", Expect::Count(t.batch_size)),
            ("train.eval_batch_size", Expect::Count(t.eval_batch_size)),
            (
                "train.encode_batch_size",
                Expect::Count(t.encode_batch_size),
            ),
            ("train.accumulation", Expect::Count(t.accumulation)),
            ("train.lr", Expect::LearningRateOrZero(t.lr)),
            ("train.weight_decay", Expect::NonNegative(t.weight_decay)),
            ("train.warmup_ratio", Expect::WarmupRatio(t.warmup_ratio)),
            ("train.max_grad_norm", Expect::ClipNorm(t.max_grad_norm)),
        ]) {
            return Err(bad(key, reason));
        }
        if !(0.0..1.0).contains(&t.cfg_prob) {
            return Err(bad(
                "train.cfg_prob",
                format!("{} is not in [0, 1)", t.cfg_prob),
            ));
        }
        if !(0.0..1.0).contains(&self.data.valid_fraction) {
            return Err(bad(
                "data.valid_fraction",
                format!("{} is not in [0, 1)", self.data.valid_fraction),
            ));
        }
        if self.task != Task::WikiReconstruction {
            if !self.data.extra_files.is_empty() {
                return Err(bad(
                    "data.extra_files",
                    "adds reconstruction text: only task wiki_reconstruction reads it".into(),
                ));
            }
            if self.data.split_sentences {
                return Err(bad(
                    "data.split_sentences",
                    "splits reconstruction text: only task wiki_reconstruction reads it".into(),
                ));
            }
        }
        if self.decode.steps == 0 {
            return Err(bad("decode.steps", "must be at least 1".into()));
        }
        if self.decode.cfg_scale < 0.0 {
            return Err(bad(
                "decode.cfg_scale",
                format!("{} is negative", self.decode.cfg_scale),
            ));
        }
        if t.eval_batch_size < t.batch_size {
            return Err(bad(
                "train.eval_batch_size",
                format!(
                    "{} is smaller than train.batch_size {}; validation runs without gradients \
                     and takes batches at least as large as training's",
                    t.eval_batch_size, t.batch_size
                ),
            ));
        }
        let metric = t.best_metric.as_str();
        if GENERATION_METRICS.contains(&metric) && t.eval_generate == 0 {
            return Err(bad(
                "train.best_metric",
                format!(
                    "{metric:?} is a generation metric, but train.eval_generate is 0: nothing is \
                     generated at validation, so no best checkpoint would ever be chosen (set \
                     eval_generate or pick one of {LOSS_METRICS:?})"
                ),
            ));
        }
        if !LOSS_METRICS.contains(&metric) && !GENERATION_METRICS.contains(&metric) {
            return Err(bad(
                "train.best_metric",
                format!(
                    "{metric:?} is not a logged validation key: one of {LOSS_METRICS:?} or, with \
                     eval_generate > 0, {GENERATION_METRICS:?}"
                ),
            ));
        }
        Ok(())
    }

    /// The encoder spec with `$LATENT_MODELS_DIR/` expanded.
    pub fn encoder_path(&self) -> Result<String> {
        expand_path(&self.encoder)
    }
}

/// Validation keys logged at every validation.
pub const LOSS_METRICS: [&str; 4] = [
    "valid/loss",
    "valid/nonpad_loss",
    "valid/bound",
    "valid/ppl_bound",
];

/// Validation keys logged only when `train.eval_generate > 0`.
pub const GENERATION_METRICS: [&str; 5] = [
    "valid/exact_match",
    "valid/token_f1",
    "valid/sentence_bleu",
    "valid/corpus_bleu",
    "valid/cosine",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> RunConfig {
        serde_json::from_str(r#"{"task": "wiki_reconstruction", "encoder": "x"}"#).unwrap()
    }

    #[test]
    fn overrides_set_values_and_name_unknown_keys() {
        let c = base()
            .with_overrides(&[
                "train.lr=0.001".into(),
                "model.layers=2".into(),
                "train.out_dir=runs/x".into(),
            ])
            .unwrap();
        assert_eq!(c.train.lr, 0.001);
        assert_eq!(c.model.layers, 2);
        assert_eq!(c.train.out_dir, PathBuf::from("runs/x"));
        let err = base()
            .with_overrides(&["train.lrr=1".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("lrr") && err.contains("did you mean `lr`"),
            "{err}"
        );
        let err = base().validate("c.yaml", &[]);
        assert!(err.is_ok());
        let mut bad = base();
        bad.train.cfg_prob = 1.5;
        let err = bad.validate("c.yaml", &[]).unwrap_err().to_string();
        assert!(
            err.contains("c.yaml") && err.contains("train.cfg_prob"),
            "{err}"
        );
    }

    #[test]
    fn validation_batches_and_the_best_metric_are_checked() {
        let err = |overrides: &[&str]| {
            let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
            base()
                .with_overrides(&overrides)
                .unwrap()
                .validate("c.yaml", &overrides)
                .err()
                .map(|e| e.to_string())
        };
        let small = err(&["train.batch_size=32", "train.eval_batch_size=16"]).unwrap();
        assert!(
            small.contains("train.eval_batch_size") && small.contains("32"),
            "{small}"
        );
        assert_eq!(
            err(&["train.batch_size=32", "train.eval_batch_size=32"]),
            None
        );
        let never = err(&["train.best_metric=valid/token_f1", "train.eval_generate=0"]).unwrap();
        assert!(
            never.contains("train.best_metric") && never.contains("eval_generate"),
            "{never}"
        );
        assert_eq!(
            err(&["train.best_metric=valid/token_f1", "train.eval_generate=8"]),
            None
        );
        let unknown = err(&["train.best_metric=valid/f1"]).unwrap();
        assert!(unknown.contains("not a logged validation key"), "{unknown}");
        assert_eq!(err(&["train.best_metric=valid/bound"]), None);
        assert_eq!(err(&["train.best_metric=valid/nonpad_loss"]), None);
    }
}
