//! The run config of `prm_train` (YAML, `--set key=value` overrides), with design 003's defaults.

use std::path::{Path, PathBuf};

use latent_core::train::{first_problem, parameter_dtype_problem, Expect, Precision};
use latent_core::ModelConfig;
use serde::{Deserialize, Serialize};

use crate::loss::LossKind;
use crate::model::{HeadKind, Pooling};
use crate::{PrmError, Result};

/// The backbone and the head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// Initial weights: a Hugging Face model directory (or hub id in the local cache), or a CODI
    /// checkpoint of this workspace (its backbone, as LatentRM initialises from the generator).
    pub backbone: Option<String>,
    /// A `config.json` for a randomly initialised backbone (used when `backbone` is unset).
    pub config: Option<PathBuf>,
    /// Compute dtype: `f32`, `bf16` or `f16`.
    pub dtype: String,
    /// Pooling of the pooled head.
    pub pooling: Pooling,
    /// Pooled or per-step head.
    pub head: HeadKind,
    /// Dropout before the head.
    pub dropout: f64,
    /// Width of the reasoner's thoughts (default: the collection's).
    pub latent_dim: Option<usize>,
}

impl Default for ModelSection {
    fn default() -> Self {
        Self {
            backbone: None,
            config: None,
            dtype: "f32".into(),
            pooling: Pooling::Mean,
            head: HeadKind::Pooled,
            dropout: 0.1,
            latent_dim: None,
        }
    }
}

/// Where the collected paths are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// A `prm_collect` output directory for training.
    pub train: PathBuf,
    /// One for evaluation after each epoch (loss on held-out paths picks `best/`).
    pub eval: Option<PathBuf>,
    /// Longest input (question tokens + thoughts); longer questions are cut from the left.
    pub max_seq_len: usize,
    /// Use at most this many training questions.
    pub max_train_questions: Option<usize>,
    /// Train on per-step Monte-Carlo values (needs a per-step head and a collection with them).
    pub step_labels: bool,
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            train: PathBuf::from("runs/prm/paths-train"),
            eval: None,
            max_seq_len: 512,
            max_train_questions: None,
            step_labels: false,
        }
    }
}

/// The optimisation (design 003's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingSection {
    /// Output directory (`checkpoint-N/`, `epoch_K/`, `best/`, `final/`, logs).
    pub output_dir: PathBuf,
    /// Passes over the paths.
    pub epochs: usize,
    /// Paths per micro-batch (pointwise losses) or questions per micro-batch (listwise).
    pub batch_size: usize,
    /// Micro-batches per update.
    pub accumulation: usize,
    /// Peak learning rate (full fine-tuning, one group).
    pub learning_rate: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Linear warm-up share of the updates before the cosine decay.
    pub warmup_ratio: f64,
    /// Global gradient-norm clip.
    pub max_grad_norm: Option<f64>,
    /// Seed of the head's initialisation, dropout and shuffling.
    pub seed: u64,
    /// Write `checkpoint-N/` every this many updates (0: never).
    pub save_every_updates: usize,
    /// Periodic checkpoints kept.
    pub keep_last: usize,
    /// `cpu` or `cuda[:N]`.
    pub device: String,
    /// Training numerics: `f32`, `bf16` or `f16` (bf16/f16: f32 master weights and optimizer state;
    /// see docs/training.md).
    pub precision: Precision,
    /// Activation (gradient) checkpointing: train on Burn's `Autodiff<B, BalancedCheckpointing>`,
    /// which recomputes the outputs of element-wise operations in the backward pass instead of
    /// keeping them (`latent_core::train::autodiff`; memory and time in docs/performance.md).
    pub checkpointing: bool,
}

impl Default for TrainingSection {
    fn default() -> Self {
        Self {
            output_dir: PathBuf::from("runs/prm/train"),
            epochs: 5,
            batch_size: 4,
            accumulation: 4,
            learning_rate: 2e-5,
            weight_decay: 0.01,
            warmup_ratio: 0.1,
            max_grad_norm: Some(1.0),
            seed: 42,
            save_every_updates: 100,
            keep_last: 3,
            device: "cpu".into(),
            precision: Precision::F32,
            checkpointing: false,
        }
    }
}

/// A whole `prm_train` run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrmRunConfig {
    /// Backbone and head.
    pub model: ModelSection,
    /// Data.
    pub data: DataSection,
    /// The loss.
    pub loss: LossKind,
    /// Optimisation.
    pub training: TrainingSection,
}

impl PrmRunConfig {
    /// Reads `path` and applies `key=value` overrides.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let cfg: Self = latent_core::config_file::read_config_with_overrides(path, overrides)?;
        cfg.check(path, overrides)?;
        Ok(cfg)
    }

    /// Rejects settings that cannot work; errors name the key and where its value comes from
    /// (`path`'s line, or the one of `overrides` that sets it).
    pub fn check(&self, path: &Path, overrides: &[String]) -> Result<()> {
        let fail = |key: &str, reason: &str| {
            Err(PrmError::Config {
                path: latent_core::config_file::key_location(path, overrides, key).into(),
                key: key.into(),
                reason: reason.into(),
            })
        };
        let t = &self.training;
        if let Some((key, reason)) = first_problem(&[
            ("training.epochs", Expect::Count(t.epochs)),
            ("training.batch_size", Expect::Count(t.batch_size)),
            ("training.accumulation", Expect::Count(t.accumulation)),
            (
                "training.learning_rate",
                Expect::LearningRate(t.learning_rate),
            ),
            ("training.weight_decay", Expect::NonNegative(t.weight_decay)),
            ("training.warmup_ratio", Expect::WarmupRatio(t.warmup_ratio)),
            ("training.max_grad_norm", Expect::ClipNorm(t.max_grad_norm)),
        ]) {
            return fail(key, &reason);
        }
        let dtype = latent_core::parse_dtype(&self.model.dtype)?;
        if let Some(reason) = parameter_dtype_problem(dtype, t.precision) {
            return fail("model.dtype", &reason);
        }
        if self.model.backbone.is_none() && self.model.config.is_none() {
            return fail(
                "model.backbone",
                "set a checkpoint to start from, or model.config for a random backbone",
            );
        }
        if self.data.step_labels && self.model.head != HeadKind::PerStep {
            return fail(
                "data.step_labels",
                "per-step labels need model.head: per_step",
            );
        }
        if !(0.0..1.0).contains(&self.model.dropout) {
            return fail("model.dropout", "must be in [0, 1)");
        }
        Ok(())
    }

    /// The backbone's `config.json`, read without loading weights: `model.config`, or the
    /// backbone directory's (a CODI checkpoint keeps it under `model/`).
    pub fn backbone_config(&self) -> Result<ModelConfig> {
        if let Some(path) = &self.model.config {
            return Ok(ModelConfig::from_file(path)?);
        }
        let dir = PathBuf::from(self.model.backbone.as_deref().unwrap_or_default());
        let candidates = [
            dir.join("config.json"),
            dir.join("model").join("config.json"),
        ];
        match candidates.iter().find(|p| p.exists()) {
            Some(p) => Ok(ModelConfig::from_file(p)?),
            None => Err(PrmError::config(
                "model.backbone",
                format!(
                    "no config.json in {} (nor in its model/); set model.config for a dry run",
                    dir.display()
                ),
            )),
        }
    }
}
