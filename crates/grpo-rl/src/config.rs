//! The YAML run config of `hrpo_train` / `hrpo_eval`, section by section; every default is HRPO's
//! (`hrpo_gsm8k.py` and `patch.py`, see `docs/grpo.md`). Unknown keys are errors.

use std::path::{Path, PathBuf};

use latent_core::latent::{ThinkingResidualConfig, ThinkingSource};
use latent_core::train::{first_problem, parameter_dtype_problem, Expect, Precision, ScheduleKind};
use serde::{Deserialize, Serialize};

use crate::advantage::ScaleRewards;
use crate::loss::LossConfig;
use crate::{GrpoError, Result};

/// HRPO's system prompt (`utils.py`), with `####` as the answer tag.
pub const SYSTEM_PROMPT: &str = "A conversation between User and Assistant. The user asks a question, and the assistant solves it. The assistant first thinks about the reasoning process in the mind and then provides the user with the answer. The final answer is provided after the #### tag, i.e., {reasoning process} #### {answer}.";

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpoRunConfig {
    /// The policy's base model.
    pub model: ModelSection,
    /// LoRA on the base model.
    #[serde(default)]
    pub lora: LoraSection,
    /// Hybrid latent reasoning (off: plain GRPO).
    #[serde(default)]
    pub hrpo: HrpoSection,
    /// Rollouts, rewards and the loss.
    #[serde(default)]
    pub grpo: GrpoSection,
    /// Optimizer, schedule, checkpoints.
    pub training: TrainingSection,
    /// Prompts.
    pub data: DataSection,
    /// Greedy evaluation.
    #[serde(default)]
    pub eval: EvalSection,
}

/// The base model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// A model directory or hub id (`config.json`, safetensors, `tokenizer.json`).
    #[serde(default)]
    pub name_or_path: Option<String>,
    /// A `config.json` for a randomly initialised model (tests, `--dry-run` without weights).
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// A `tokenizer.json` (default: the model directory's).
    #[serde(default)]
    pub tokenizer: Option<PathBuf>,
    /// Compute dtype: `f32`, `bf16` or `f16` (Λ stays f32).
    #[serde(default = "f32_name")]
    pub dtype: String,
    /// Render prompts with the model's chat template (`tokenizer_config.json`) and the system
    /// prompt; off: the question text alone.
    #[serde(default = "yes")]
    pub chat_template: bool,
    /// The system prompt (HRPO's by default).
    #[serde(default = "system_prompt")]
    pub system_prompt: String,
    /// End-of-sequence ids (default: `config.json`'s `eos_token_id` plus the chat template's EOS).
    #[serde(default)]
    pub eos_token_ids: Vec<u32>,
    /// Padding id (HRPO: the EOS id; default: the first EOS id).
    #[serde(default)]
    pub pad_token_id: Option<u32>,
}

/// LoRA (PEFT semantics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoraSection {
    /// Off: every base weight trains (the CPU demo's tiny model).
    pub enabled: bool,
    /// Rank.
    pub r: usize,
    /// `lora_alpha`.
    pub alpha: f64,
    /// Dropout on the adapter input.
    pub dropout: f64,
    /// HF module names.
    pub target_modules: Vec<String>,
}

impl Default for LoraSection {
    fn default() -> Self {
        Self {
            enabled: true,
            r: 32,
            alpha: 64.0,
            dropout: 0.0,
            target_modules: [
                "q_proj",
                "k_proj",
                "v_proj",
                "o_proj",
                "gate_proj",
                "up_proj",
                "down_proj",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// How the pass that recomputes projected thinking states is fed (design document 001).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecomputeInputs {
    /// Pass 1 runs the rollout's fused inputs (stored states), so its hidden states are the
    /// rollout's (the spec's correction).
    #[default]
    Fused,
    /// Pass 1 runs plain token embeddings (design 001's code).
    Tokens,
}

/// Which hidden state a position's projected state comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatePosition {
    /// `hidden_{t−1}`, the state that produced token t — what generation used (the spec's
    /// correction).
    #[default]
    Previous,
    /// `hidden_t`, the mixed position itself (design 001's `cache[thinking_mask]`).
    Same,
}

/// Hybrid latent reasoning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HrpoSection {
    /// Mix thinking states into the inputs while a completion thinks (off: plain GRPO).
    pub enabled: bool,
    /// Where thinking states come from.
    pub thinking: ThinkingSource,
    /// Initialisation of the residual.
    pub residual: ThinkingResidualConfig,
    /// Thinking stops once the decoded completion contains this.
    pub answer_delimiter: String,
    /// Projection mode: recompute the states with gradients in two passes (off: replay the stored
    /// states, so the projection gets no gradient).
    pub recompute_projection: bool,
    /// Inputs of the first pass.
    pub recompute_inputs: RecomputeInputs,
    /// Hidden state the recomputed state of a position comes from.
    pub state_position: StatePosition,
}

impl Default for HrpoSection {
    fn default() -> Self {
        Self {
            enabled: true,
            thinking: ThinkingSource::ProbabilityWeighted,
            residual: ThinkingResidualConfig::default(),
            answer_delimiter: "####".into(),
            recompute_projection: true,
            recompute_inputs: RecomputeInputs::Fused,
            state_position: StatePosition::Previous,
        }
    }
}

/// Rollouts, rewards and the loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoSection {
    /// Completions per prompt G.
    pub group_size: usize,
    /// Prompts per micro-batch (HRPO: 8 completions = 2 prompts).
    pub prompts_per_micro_batch: usize,
    /// Micro-batches per update (and per generation batch).
    pub accumulation: usize,
    /// Times each generation batch is trained on (μ; > 1 makes the ratio clip matter).
    pub num_iterations: usize,
    /// Sampling temperature.
    pub temperature: f32,
    /// Top-k of sampling (transformers' generation default 50; 0 = off).
    pub top_k: usize,
    /// Top-p of sampling (1 = off).
    pub top_p: f32,
    /// Longest completion, EOS included.
    pub max_completion_length: usize,
    /// The loss.
    pub loss: LossConfig,
    /// Which std scales the advantages.
    pub scale_rewards: ScaleRewards,
    /// Divide logits by the sampling temperature in the loss (TRL); off: raw logits (HRPO).
    pub logprob_temperature: bool,
    /// Completions that hit the length limit without EOS are left out of the loss.
    pub mask_truncated_completions: bool,
    /// DAPO dynamic sampling: groups whose rewards are all equal are replaced by groups of
    /// further prompts (up to `dynamic_sampling_rounds` extra generation rounds).
    pub dynamic_sampling: bool,
    /// Extra generation rounds of dynamic sampling.
    pub dynamic_sampling_rounds: usize,
    /// Positions per chunk of the log-prob computation.
    pub logprob_chunk: usize,
}

impl Default for GrpoSection {
    fn default() -> Self {
        Self {
            group_size: 4,
            prompts_per_micro_batch: 2,
            accumulation: 4,
            num_iterations: 1,
            temperature: 0.5,
            top_k: 50,
            top_p: 1.0,
            max_completion_length: 1024,
            loss: LossConfig::default(),
            scale_rewards: ScaleRewards::Group,
            logprob_temperature: false,
            mask_truncated_completions: false,
            dynamic_sampling: false,
            dynamic_sampling_rounds: 3,
            logprob_chunk: 64,
        }
    }
}

/// Optimizer, schedule and checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSection {
    /// Where checkpoints, logs and the adapter go.
    pub output_dir: PathBuf,
    /// Passes over the prompts.
    #[serde(default = "one")]
    pub epochs: usize,
    /// Learning rate of LoRA (or of every base weight without LoRA).
    #[serde(default = "lr_lora")]
    pub learning_rate: f64,
    /// Learning rate of the residual's gates.
    #[serde(default = "lr_gates")]
    pub lr_residual_gate: f64,
    /// Learning rate of Λ.
    #[serde(default = "lr_lambda")]
    pub lr_residual_lambda: f64,
    /// Learning rate of `thinking_projection` (0 freezes it: design 001's first stage).
    #[serde(default = "lr_gates")]
    pub lr_thinking_projection: f64,
    /// Decoupled weight decay of every group.
    #[serde(default = "wd")]
    pub weight_decay: f64,
    /// Warm-up fraction.
    #[serde(default = "warmup")]
    pub warmup_ratio: f64,
    /// Schedule after warm-up (every group).
    #[serde(default = "cosine")]
    pub schedule: ScheduleKind,
    /// Global grad-norm clip.
    #[serde(default = "clip")]
    pub max_grad_norm: Option<f64>,
    /// AdamW β₁.
    #[serde(default = "beta1")]
    pub adam_beta1: f64,
    /// AdamW β₂.
    #[serde(default = "beta2")]
    pub adam_beta2: f64,
    /// Seed of initialisation, shuffling and sampling.
    #[serde(default = "seed")]
    pub seed: u64,
    /// Write `checkpoint-N` every N updates (0 = never).
    #[serde(default = "save_every")]
    pub save_every_updates: usize,
    /// Periodic checkpoints kept.
    #[serde(default = "keep")]
    pub keep_last: usize,
    /// Log the projection's statistics every N updates.
    #[serde(default = "ten")]
    pub projection_log_every: usize,
    /// `cpu`, `cuda` or `cuda:N`.
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

/// Prompts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Training prompts.
    pub train: PathBuf,
    /// Their format.
    #[serde(default)]
    pub format: PromptFormat,
    /// Use the first N training prompts only.
    #[serde(default)]
    pub max_train_samples: Option<usize>,
    /// Evaluation prompts.
    #[serde(default)]
    pub eval: Option<PathBuf>,
    /// Use the first N evaluation prompts only.
    #[serde(default)]
    pub max_eval_samples: Option<usize>,
}

/// Prompt file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptFormat {
    /// GSM8K JSON lines (`question`, `answer` ending in `#### N`).
    #[default]
    Gsm8k,
    /// icot lines `question||cot #### answer` (GSM8k-Aug, the synthetic tasks).
    Icot,
}

/// Greedy evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    /// Prompts per batch.
    pub batch_size: usize,
    /// Longest completion (HRPO's evaluation: 512).
    pub max_new_tokens: usize,
}

impl Default for EvalSection {
    fn default() -> Self {
        Self {
            batch_size: 16,
            max_new_tokens: 512,
        }
    }
}

fn f32_name() -> String {
    "f32".into()
}
fn yes() -> bool {
    true
}
fn system_prompt() -> String {
    SYSTEM_PROMPT.into()
}
fn one() -> usize {
    1
}
fn lr_lora() -> f64 {
    5e-6
}
fn lr_gates() -> f64 {
    1e-4
}
fn lr_lambda() -> f64 {
    1e-3
}
fn wd() -> f64 {
    0.1
}
fn warmup() -> f64 {
    0.1
}
fn cosine() -> ScheduleKind {
    ScheduleKind::Cosine
}
fn clip() -> Option<f64> {
    Some(0.1)
}
fn beta1() -> f64 {
    0.9
}
fn beta2() -> f64 {
    0.99
}
fn seed() -> u64 {
    42
}
fn save_every() -> usize {
    250
}
fn keep() -> usize {
    3
}
fn ten() -> usize {
    10
}
fn cpu() -> String {
    "cpu".into()
}

impl GrpoRunConfig {
    /// Reads a YAML (or JSON) config, applies `key=value` overrides and validates it.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let config: Self = latent_core::config_file::read_config_with_overrides(path, overrides)?;
        config
            .validate()
            .map_err(|(key, reason)| GrpoError::Config {
                path: latent_core::config_file::key_location(path, overrides, key).into(),
                key: key.into(),
                reason,
            })?;
        Ok(config)
    }

    /// Checks values that cannot work: `(key, reason)` of the first problem.
    pub fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        let g = &self.grpo;
        let t = &self.training;
        if let Some(problem) = first_problem(&[
            ("training.epochs", Expect::Count(t.epochs)),
            (
                "training.learning_rate",
                Expect::LearningRate(t.learning_rate),
            ),
            (
                "training.lr_residual_gate",
                Expect::LearningRateOrZero(t.lr_residual_gate),
            ),
            (
                "training.lr_residual_lambda",
                Expect::LearningRateOrZero(t.lr_residual_lambda),
            ),
            (
                "training.lr_thinking_projection",
                Expect::LearningRateOrZero(t.lr_thinking_projection),
            ),
            ("training.weight_decay", Expect::NonNegative(t.weight_decay)),
            ("training.warmup_ratio", Expect::WarmupRatio(t.warmup_ratio)),
            ("training.max_grad_norm", Expect::ClipNorm(t.max_grad_norm)),
        ]) {
            return Err(problem);
        }
        match latent_core::parse_dtype(&self.model.dtype) {
            Ok(dtype) => {
                if let Some(reason) = parameter_dtype_problem(dtype, t.precision) {
                    return Err(("model.dtype", reason));
                }
            }
            Err(e) => return Err(("model.dtype", e.to_string())),
        }
        if self.model.name_or_path.is_none() && self.model.config.is_none() {
            return Err(("model.name_or_path", "give a model or a config.json".into()));
        }
        if g.group_size < 2 {
            return Err((
                "grpo.group_size",
                format!(
                    "{} leaves no group to compare within (at least 2)",
                    g.group_size
                ),
            ));
        }
        for (key, v) in [
            ("grpo.prompts_per_micro_batch", g.prompts_per_micro_batch),
            ("grpo.accumulation", g.accumulation),
            ("grpo.num_iterations", g.num_iterations),
            ("grpo.max_completion_length", g.max_completion_length),
            ("grpo.logprob_chunk", g.logprob_chunk),
        ] {
            if v == 0 {
                return Err((key, "must be at least 1".into()));
            }
        }
        if g.temperature <= 0.0 {
            return Err((
                "grpo.temperature",
                "rollouts sample: it must be positive".into(),
            ));
        }
        if g.loss.epsilon < 0.0 || g.loss.epsilon_high < 0.0 {
            return Err(("grpo.loss.epsilon", "must not be negative".into()));
        }
        if self.hrpo.enabled && self.hrpo.answer_delimiter.is_empty() {
            return Err(("hrpo.answer_delimiter", "is empty".into()));
        }
        if self.lora.enabled && self.lora.r == 0 {
            return Err(("lora.r", "must be at least 1".into()));
        }
        Ok(())
    }

    /// Completions per micro-batch.
    pub fn completions_per_micro_batch(&self) -> usize {
        self.grpo.prompts_per_micro_batch * self.grpo.group_size
    }

    /// Prompts per generation batch (one update's window).
    pub fn prompts_per_window(&self) -> usize {
        self.grpo.prompts_per_micro_batch * self.grpo.accumulation
    }

    /// Whether the two-pass recomputation of projected states runs.
    pub fn two_pass(&self) -> bool {
        self.hrpo.enabled
            && self.hrpo.thinking == ThinkingSource::Projection
            && self.hrpo.recompute_projection
    }
}
