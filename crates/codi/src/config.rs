//! The run config of `codi_train` / `codi_eval` (YAML, see `configs/codi/`), with every key
//! checked (unknown keys are errors naming file, line and the closest key) and cross-field
//! validation in [`CodiRunConfig::validate`].

use std::path::{Path, PathBuf};

use latent_core::lora::LoraConfig;
use latent_core::model::NewRowInit;
use latent_core::train::{first_problem, parameter_dtype_problem, Expect, Precision, ScheduleKind};
use serde::{Deserialize, Serialize};

use crate::eval::EvalConfig;
use crate::loss::{DistillLoss, LossConfig};
use crate::{CodiError, Result, Task};

/// Where the model comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// A local directory or hub id with `config.json`, safetensors weights and `tokenizer.json`;
    /// `null` for a randomly initialised model built from `config`.
    #[serde(default)]
    pub name_or_path: Option<String>,
    /// An architecture `config.json` used for random initialisation and `--dry-run` (no weights
    /// needed). Relative paths are resolved against the working directory.
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// A `tokenizer.json` overriding the model's.
    #[serde(default)]
    pub tokenizer: Option<PathBuf>,
    /// Parameter dtype: `f32`, `bf16` or `f16`.
    #[serde(default = "f32_name")]
    pub dtype: String,
    /// Prepend the model's `bos_token_id` to questions (Llama).
    #[serde(default)]
    pub add_bos: bool,
    /// Keep this existing id as padding instead of appending one.
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// End-of-sequence id (default: the model config's first `eos_token_id`).
    #[serde(default)]
    pub eos_token_id: Option<u32>,
}

fn f32_name() -> String {
    "f32".into()
}

/// Which embedding rows train.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingTraining {
    /// None (the reference's LoRA runs).
    #[default]
    Frozen,
    /// Only the rows of the added special tokens.
    NewTokens,
    /// All rows (and the tied head).
    All,
}

/// CODI's own settings (reference `train.py` argument names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodSection {
    /// `codi`, `cot_sft` or `no_cot_sft`.
    #[serde(default)]
    pub task: Task,
    /// Continuous thoughts (6).
    #[serde(default = "six")]
    pub num_latent: usize,
    /// Use the projection (the ablation without it feeds hidden states back directly). Unset: yes
    /// for a new model; with `restore_from`, whatever the restored model has (set, it must match).
    #[serde(default)]
    pub use_prj: Option<bool>,
    /// Inner width of the projection. Unset: the model width for a new model; with
    /// `restore_from`, the restored projection's (set, it must match).
    #[serde(default)]
    pub prj_dim: Option<usize>,
    /// Drop the projection's final LayerNorm. Unset: no for a new model; with `restore_from`, as
    /// the restored projection (set, it must match).
    #[serde(default)]
    pub prj_no_ln: Option<bool>,
    /// Dropout on the projection input.
    #[serde(default)]
    pub prj_dropout: f64,
    /// β.
    #[serde(default = "one")]
    pub distill_loss_factor: f64,
    /// γ.
    #[serde(default = "one")]
    pub ref_loss_factor: f64,
    /// `smooth_l1` or `l2`.
    #[serde(default)]
    pub distill_loss_type: DistillLoss,
    /// Reproduce the reference code's masking (see `docs/codi.md`).
    #[serde(default)]
    pub reference_masking: bool,
    /// Which embedding rows train.
    #[serde(default)]
    pub embeddings: EmbeddingTraining,
    /// How the rows added for pad/`<bot>`/`<eot>` (embedding, and an untied head) start: `random`
    /// (N(0, initializer_range²)) or `mean` (the mean of the existing rows: transformers'
    /// `resize_token_embeddings` default, which the reference implementation uses).
    #[serde(default)]
    pub new_token_init: NewRowInit,
    /// Text before the answer.
    #[serde(default = "answer_prefix")]
    pub answer_prefix: String,
    /// Start from a saved CODI/CoT-SFT model directory instead of `model.name_or_path`.
    #[serde(default)]
    pub restore_from: Option<PathBuf>,
}

fn six() -> usize {
    6
}
fn one() -> f64 {
    1.0
}
fn answer_prefix() -> String {
    "The answer is: ".into()
}

/// LoRA settings (PEFT names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraSection {
    /// Rank.
    pub r: usize,
    /// `lora_alpha`.
    pub alpha: f64,
    /// Dropout on the adapter input.
    #[serde(default)]
    pub dropout: f64,
    /// Module names, e.g. `[c_attn, c_proj, c_fc]`.
    pub target_modules: Vec<String>,
}

impl LoraSection {
    /// The PEFT config.
    pub fn to_config(&self) -> LoraConfig {
        let targets: Vec<&str> = self.target_modules.iter().map(String::as_str).collect();
        let mut c = LoraConfig::new(self.r, self.alpha, &targets);
        c.lora_dropout = self.dropout;
        c
    }
}

/// Data file formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// GSM8k-Aug lines `question||<<eq>> ... #### answer`.
    #[default]
    Icot,
    /// GSM8k-Aug-NL lines (CoT sentences split on `". "`).
    IcotNl,
    /// GSM8k-Aug in its Hugging Face form (`zen-E/GSM8k-Aug`): fields `question`, `cot`, `answer`,
    /// as JSON lines or a `.parquet` file of the dataset.
    IcotHf,
    /// GSM8k-Aug-NL in its Hugging Face form (`zen-E/GSM8k-Aug-NL`), as [`DataFormat::IcotHf`].
    IcotNlHf,
    /// GSM8K JSONL (`question`, `answer` with `#### X`); for evaluation.
    Gsm8k,
}

/// Data settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Training file; relative paths are looked up under `LATENT_DATA_DIR` first.
    #[serde(default)]
    pub train: Option<PathBuf>,
    /// Format of `train`.
    #[serde(default)]
    pub train_format: DataFormat,
    /// Evaluation file.
    #[serde(default)]
    pub eval: Option<PathBuf>,
    /// Format of `eval`.
    #[serde(default)]
    pub eval_format: DataFormat,
    /// Keep the last CoT step (ablation).
    #[serde(default)]
    pub keep_last_step: bool,
    /// Drop longer examples.
    #[serde(default)]
    pub max_token_num: Option<usize>,
    /// Use at most this many training examples (from the start of the file).
    #[serde(default)]
    pub max_train_samples: Option<usize>,
    /// Evaluate at most this many questions.
    #[serde(default)]
    pub max_eval_samples: Option<usize>,
}

/// Optimisation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSection {
    /// Where checkpoints, logs and the final model go.
    pub output_dir: PathBuf,
    /// Epochs.
    pub epochs: usize,
    /// Examples per micro-batch.
    pub per_device_batch_size: usize,
    /// Examples per optimizer update (a multiple of `per_device_batch_size`).
    pub effective_batch_size: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// AdamW weight decay (not on biases and norm weights).
    #[serde(default)]
    pub weight_decay: f64,
    /// Warm-up fraction of the updates.
    #[serde(default)]
    pub warmup_ratio: f64,
    /// `constant`, `linear` or `cosine` (to 0).
    #[serde(default = "cosine")]
    pub schedule: ScheduleKind,
    /// Global gradient-norm clipping.
    #[serde(default)]
    pub max_grad_norm: Option<f64>,
    /// Seed for initialisation and shuffling.
    #[serde(default = "eleven")]
    pub seed: u64,
    /// Save a resumable checkpoint every this many updates (0: only at the end of each epoch).
    #[serde(default)]
    pub save_every_updates: usize,
    /// Resumable checkpoints kept.
    #[serde(default = "two")]
    pub keep_last: usize,
    /// `cpu`, `cuda`, `cuda:N`.
    #[serde(default = "cpu")]
    pub device: String,
    /// Training numerics: `f32`, `bf16` or `f16` (bf16/f16: f32 master weights and optimizer state;
    /// see docs/training.md).
    #[serde(default)]
    pub precision: Precision,
    /// Activation (gradient) checkpointing: train on Burn's `Autodiff<B, BalancedCheckpointing>`,
    /// which recomputes the outputs of element-wise operations in the backward pass instead of
    /// keeping them (`latent_core::train::autodiff`; memory and time in docs/performance.md).
    #[serde(default)]
    pub checkpointing: bool,
}

fn cosine() -> ScheduleKind {
    ScheduleKind::Cosine
}
fn eleven() -> u64 {
    11
}
fn two() -> usize {
    2
}
fn cpu() -> String {
    "cpu".into()
}

/// Evaluation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSection {
    /// Questions per batch.
    #[serde(default = "thirty_two")]
    pub batch_size: usize,
    /// Decoding budget.
    #[serde(default = "two_five_six")]
    pub max_new_tokens: usize,
    /// Examples whose thoughts are probed (top-k tokens).
    #[serde(default)]
    pub probe_examples: usize,
    /// Tokens per probed thought.
    #[serde(default = "five")]
    pub probe_top_k: usize,
}

fn thirty_two() -> usize {
    32
}
fn two_five_six() -> usize {
    256
}
fn five() -> usize {
    5
}

impl Default for EvalSection {
    fn default() -> Self {
        Self {
            batch_size: 32,
            max_new_tokens: 256,
            probe_examples: 0,
            probe_top_k: 5,
        }
    }
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodiRunConfig {
    /// The model.
    pub model: ModelSection,
    /// CODI settings.
    pub method: MethodSection,
    /// LoRA (`null`: full fine-tuning).
    #[serde(default)]
    pub lora: Option<LoraSection>,
    /// Data.
    pub data: DataSection,
    /// Optimisation.
    pub training: TrainingSection,
    /// Evaluation.
    #[serde(default)]
    pub eval: EvalSection,
}

impl CodiRunConfig {
    /// Reads `path` and applies `key=value` overrides, then validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let config: Self = latent_core::config_file::read_config_with_overrides(path, overrides)?;
        config.validate(path, overrides)?;
        Ok(config)
    }

    /// Value and cross-field checks; errors name the key and where its value comes from (`path`'s
    /// line, or the one of `overrides` that sets it).
    pub fn validate(&self, path: &Path, overrides: &[String]) -> Result<()> {
        let bad = |key: &str, reason: String| {
            Err(CodiError::Config {
                path: latent_core::config_file::key_location(path, overrides, key).into(),
                key: key.into(),
                reason,
            })
        };
        let t = &self.training;
        if let Some((key, reason)) = first_problem(&[
            ("training.epochs", Expect::Count(t.epochs)),
            (
                "training.per_device_batch_size",
                Expect::Count(t.per_device_batch_size),
            ),
            (
                "training.effective_batch_size",
                Expect::Count(t.effective_batch_size),
            ),
            (
                "training.learning_rate",
                Expect::LearningRate(t.learning_rate),
            ),
            ("training.weight_decay", Expect::NonNegative(t.weight_decay)),
            ("training.warmup_ratio", Expect::WarmupRatio(t.warmup_ratio)),
            ("training.max_grad_norm", Expect::ClipNorm(t.max_grad_norm)),
            (
                "method.distill_loss_factor",
                Expect::NonNegative(self.method.distill_loss_factor),
            ),
            (
                "method.ref_loss_factor",
                Expect::NonNegative(self.method.ref_loss_factor),
            ),
        ]) {
            return bad(key, reason);
        }
        let dtype = latent_core::parse_dtype(&self.model.dtype)?;
        if let Some(reason) = parameter_dtype_problem(dtype, t.precision) {
            return bad("model.dtype", reason);
        }
        if self.model.name_or_path.is_none()
            && self.model.config.is_none()
            && self.method.restore_from.is_none()
        {
            return bad(
                "model.name_or_path",
                "give a model directory or hub id, an architecture `model.config`, or `method.restore_from`".into(),
            );
        }
        if !t
            .effective_batch_size
            .is_multiple_of(t.per_device_batch_size)
        {
            return bad(
                "training.effective_batch_size",
                format!(
                    "{} is not a multiple of per_device_batch_size {}",
                    t.effective_batch_size, t.per_device_batch_size
                ),
            );
        }
        if self.method.task == Task::Codi && self.method.num_latent == 0 {
            return bad("method.num_latent", "CODI needs at least one latent".into());
        }
        if let Some(lora) = &self.lora {
            if let Err((key, reason)) = lora.to_config().check() {
                return bad(&format!("lora.{key}"), reason);
            }
        }
        self.training.device.parse::<latent_core::DeviceSpec>()?;
        Ok(())
    }

    /// Micro-batches per update.
    pub fn accumulation(&self) -> usize {
        self.training.effective_batch_size / self.training.per_device_batch_size
    }

    /// The evaluation settings for a model with `num_latent` thoughts.
    pub fn eval_config(&self, num_latent: usize) -> EvalConfig {
        EvalConfig {
            batch_size: self.eval.batch_size,
            max_new_tokens: self.eval.max_new_tokens,
            num_latent,
            probe_top_k: self.eval.probe_top_k,
            probe_examples: self.eval.probe_examples,
            reference_masking: self.method.reference_masking,
            stop: None,
        }
    }

    /// The loss settings.
    pub fn loss(&self) -> LossConfig {
        LossConfig {
            num_latent: self.method.num_latent,
            distill_loss_factor: self.method.distill_loss_factor,
            ref_loss_factor: self.method.ref_loss_factor,
            distill_loss_type: self.method.distill_loss_type,
            reference_masking: self.method.reference_masking,
        }
    }
}

pub use latent_datasets::data_dir::resolve_data_path;
