//! The policy: a [`ThinkingLm`] (LoRA on the base model, HRPO's residual, optionally the
//! `thinking_projection`), its parameter groups (HRPO's `patch.py`), the reference policy, the
//! trainable counts `--dry-run` prints, and the files a trained policy is saved as.
//!
//! A saved policy is a directory: with LoRA, a PEFT adapter (`adapter_config.json`,
//! `adapter_model.safetensors` with the residual and projection in `modules_to_save` under HRPO's
//! names) plus `grpo.json`; without LoRA (full fine-tuning), `model/` in Hugging Face layout plus
//! `thinking.safetensors` (the residual and projection under `model.thinking_*`) and `grpo.json`.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::DType;
use latent_core::hf::chat_template::ChatTemplate;
use latent_core::hf::safetensors::{write_safetensors, Checkpoint, SaveDtype};
use latent_core::hf::tokenizer::load_tokenizer;
use latent_core::latent::{
    ThinkingLm, ThinkingProjection, ThinkingResidual, ThinkingSource, PROJECTION_INIT_STD,
};
use latent_core::lora::{adapter_parameter_count, LoraConfig};
use latent_core::train::{AdamWSettings, ParamGroupConfig};
use latent_core::{parse_dtype, seed_backend, CausalLm, ModelConfig, Pretrained};
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::config::{GrpoRunConfig, LoraSection};
use crate::{GrpoError, Result};

/// Format tag of `grpo.json`.
pub const GRPO_FORMAT: &str = "latent-reasoning/grpo";

/// What `grpo.json` records about a saved policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyMeta {
    /// Always [`GRPO_FORMAT`].
    pub format: String,
    /// Whether rollouts mix thinking states.
    pub hrpo: bool,
    /// Where thinking states come from.
    pub thinking: ThinkingSource,
    /// Thinking stops at this delimiter.
    pub answer_delimiter: String,
    /// The base model.
    pub base_model: String,
    /// LoRA was used (the directory is a PEFT adapter) or not (`model/` is the whole model).
    pub lora: bool,
}

/// A built policy with what prompts and rollouts need.
pub struct Built<B: Backend> {
    /// The policy.
    pub model: ThinkingLm<B>,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// Where the tokenizer came from (for messages).
    pub tokenizer_path: PathBuf,
    /// The chat template, when prompts use one.
    pub template: Option<ChatTemplate>,
    /// End-of-sequence ids.
    pub eos_token_ids: Vec<u32>,
    /// Padding id.
    pub pad_token_id: u32,
}

/// The PEFT config of `section`.
pub fn lora_config(section: &LoraSection) -> LoraConfig {
    let targets: Vec<&str> = section.target_modules.iter().map(String::as_str).collect();
    let mut c = LoraConfig::new(section.r, section.alpha, &targets);
    c.lora_dropout = section.dropout;
    c
}

/// The base model of `config` (weights from `model.name_or_path`, or seeded random weights from
/// `model.config`), its tokenizer and chat template.
pub fn load_base<B: Backend>(
    config: &GrpoRunConfig,
    device: &B::Device,
) -> Result<(CausalLm<B>, Tokenizer, PathBuf, Option<ChatTemplate>)> {
    let m = &config.model;
    let dtype = parse_dtype(&m.dtype)?;
    let (lm, tokenizer, tokenizer_path, tokenizer_config) = match &m.name_or_path {
        Some(spec) => {
            let p = Pretrained::<B>::load(spec, device, dtype)?;
            let path = m
                .tokenizer
                .clone()
                .or(p.files.tokenizer.clone())
                .ok_or_else(|| {
                    GrpoError::config("model.tokenizer", format!("{spec} has no tokenizer.json"))
                })?;
            let tokenizer = match (&m.tokenizer, p.tokenizer) {
                (None, Some(t)) => t,
                _ => load_tokenizer(&path)?,
            };
            (p.model, tokenizer, path, p.files.tokenizer_config)
        }
        None => {
            let config_path = m.config.as_ref().expect("validated");
            let model_config = ModelConfig::from_file(config_path)?;
            let path = m.tokenizer.clone().ok_or_else(|| {
                GrpoError::config("model.tokenizer", "a random model needs a tokenizer.json")
            })?;
            let lm = {
                // Casting materialises the lazy weights while the seeded RNG is held.
                let _rng = seed_backend::<B>(device, config.training.seed);
                CausalLm::<B>::new(&model_config, device).cast_params(dtype)
            };
            let tokenizer = load_tokenizer(&path)?;
            let tc = path.with_file_name("tokenizer_config.json");
            (lm, tokenizer, path, tc.exists().then_some(tc))
        }
    };
    let template = match (m.chat_template, tokenizer_config) {
        (false, _) => None,
        (true, Some(path)) => Some(ChatTemplate::from_tokenizer_config(&path)?),
        (true, None) => {
            return Err(GrpoError::config(
                "model.chat_template",
                "true, but the model has no tokenizer_config.json (set it to false to prompt with the question alone)",
            ))
        }
    };
    Ok((lm, tokenizer, tokenizer_path, template))
}

/// The policy of `config`: the base model with LoRA (when enabled), a fresh residual (frozen and
/// unused when HRPO is off) and, for [`ThinkingSource::Projection`], a fresh projection.
pub fn build<B: Backend>(config: &GrpoRunConfig, device: &B::Device) -> Result<Built<B>> {
    let (lm, tokenizer, tokenizer_path, template) = load_base::<B>(config, device)?;
    let dtype = parse_dtype(&config.model.dtype)?;
    let eos = eos_ids(config, &lm, template.as_ref(), &tokenizer)?;
    let pad = config.model.pad_token_id.unwrap_or(eos[0]);
    let _rng = seed_backend::<B>(device, config.training.seed.wrapping_add(1));
    let lm = if config.lora.enabled {
        lm.with_lora(&lora_config(&config.lora))?
    } else {
        lm
    };
    let source = if config.hrpo.enabled {
        config.hrpo.thinking
    } else {
        ThinkingSource::ProbabilityWeighted
    };
    let mut model = ThinkingLm::new(lm, &config.hrpo.residual, source)?;
    if !config.hrpo.enabled {
        model.residual = model.residual.no_grad();
    }
    let model = model.cast(dtype);
    Ok(Built {
        model,
        tokenizer,
        tokenizer_path,
        template,
        eos_token_ids: eos,
        pad_token_id: pad,
    })
}

/// The end-of-sequence ids of a run: `model.eos_token_ids`, else `config.json`'s, plus the chat
/// template's EOS token (Qwen's `<|im_end|>`) when prompts use it.
pub fn eos_ids<B: Backend>(
    config: &GrpoRunConfig,
    lm: &CausalLm<B>,
    template: Option<&ChatTemplate>,
    tokenizer: &Tokenizer,
) -> Result<Vec<u32>> {
    let mut eos = if config.model.eos_token_ids.is_empty() {
        lm.config().eos_token_ids.clone()
    } else {
        config.model.eos_token_ids.clone()
    };
    if let Some(id) = template
        .and_then(|t| t.eos_token())
        .and_then(|t| tokenizer.token_to_id(t))
    {
        if !eos.contains(&id) {
            eos.push(id);
        }
    }
    if eos.is_empty() {
        return Err(GrpoError::config(
            "model.eos_token_ids",
            "the model's config.json names no eos_token_id: give one",
        ));
    }
    Ok(eos)
}

/// HRPO's parameter groups (`patch.py` + design 002): LoRA (or the whole base model without LoRA),
/// the residual's gates, Λ, and the projection, each with its own learning rate, the same weight
/// decay and schedule.
pub fn param_groups(config: &GrpoRunConfig) -> Vec<ParamGroupConfig> {
    let t = &config.training;
    let group = |name: &str, prefixes: &[&str], lr: f64| ParamGroupConfig {
        name: name.into(),
        prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
        lr,
        weight_decay: t.weight_decay,
        schedule: t.schedule,
        warmup_ratio: t.warmup_ratio,
    };
    let mut groups = vec![group(
        if config.lora.enabled { "lora" } else { "model" },
        &["lm"],
        t.learning_rate,
    )];
    if config.hrpo.enabled {
        groups.push(group(
            "residual_gate",
            &["residual.gate_r", "residual.gate_i"],
            t.lr_residual_gate,
        ));
        groups.push(group(
            "residual_lambda",
            &["residual.lambda"],
            t.lr_residual_lambda,
        ));
        if config.hrpo.thinking == ThinkingSource::Projection {
            groups.push(group(
                "thinking_projection",
                &["projection"],
                t.lr_thinking_projection,
            ));
        }
    }
    groups
}

/// AdamW as HRPO runs it: β (0.9, 0.99), ε 1e-8, decay on every parameter of a group.
pub fn adamw(config: &GrpoRunConfig) -> AdamWSettings {
    AdamWSettings {
        beta_1: config.training.adam_beta1,
        beta_2: config.training.adam_beta2,
        epsilon: 1e-8,
        no_decay_bias_and_norm: false,
    }
}

/// Trainable parameters per group of the policy `config` builds on a model of `model_config`,
/// computed from the configs alone (nothing is allocated).
pub fn trainable_counts(
    config: &GrpoRunConfig,
    model_config: &ModelConfig,
) -> Vec<(String, usize)> {
    let h = model_config.hidden_size;
    let mut out = vec![if config.lora.enabled {
        (
            "lora".to_string(),
            adapter_parameter_count(model_config, &lora_config(&config.lora)),
        )
    } else {
        ("model".to_string(), model_config.num_parameters())
    }];
    if config.hrpo.enabled {
        out.push(("residual_gate".into(), 2 * (h * h + h)));
        out.push(("residual_lambda".into(), h));
        if config.hrpo.thinking == ThinkingSource::Projection {
            out.push(("thinking_projection".into(), h * h));
        }
    }
    out
}

impl PolicyMeta {
    /// The meta of a policy trained with `config`.
    pub fn of(config: &GrpoRunConfig) -> Self {
        Self {
            format: GRPO_FORMAT.into(),
            hrpo: config.hrpo.enabled,
            thinking: config.hrpo.thinking,
            answer_delimiter: config.hrpo.answer_delimiter.clone(),
            base_model: config
                .model
                .name_or_path
                .clone()
                .or(config
                    .model
                    .config
                    .as_ref()
                    .map(|p| p.display().to_string()))
                .unwrap_or_default(),
            lora: config.lora.enabled,
        }
    }
}

/// Writes `model` into `dir` (see the module docs for the layout), with `tokenizer`.
pub fn save_policy<B: Backend>(
    model: &ThinkingLm<B>,
    dir: &Path,
    config: &GrpoRunConfig,
    tokenizer: &Tokenizer,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| GrpoError::io(dir, e))?;
    let meta = PolicyMeta::of(config);
    if config.lora.enabled {
        let mut lora = lora_config(&config.lora);
        lora.base_model_name_or_path = Some(meta.base_model.clone());
        if config.hrpo.enabled {
            model.save_adapter(dir, &lora)?;
        } else {
            model.lm.save_lora(dir, &lora)?;
        }
    } else {
        model
            .lm
            .save_pretrained(dir.join("model"), SaveDtype::F32)?;
        if config.hrpo.enabled {
            write_safetensors(
                &dir.join("thinking.safetensors"),
                &model.thinking_tensors(""),
                SaveDtype::F32,
            )?;
        }
    }
    let path = dir.join("tokenizer.json");
    tokenizer
        .save(&path, false)
        .map_err(|e| GrpoError::Tokenizer {
            path: path.clone(),
            message: format!("saving: {e}"),
        })?;
    let path = dir.join("grpo.json");
    let text = serde_json::to_string_pretty(&meta).expect("json");
    std::fs::write(&path, text + "\n").map_err(|e| GrpoError::io(&path, e))
}

/// Loads a policy saved by [`save_policy`] onto `base` (the same base model it was trained from;
/// ignored without LoRA, where `dir/model` is the whole model).
pub fn load_policy<B: Backend>(
    base: CausalLm<B>,
    dir: &Path,
    dtype: DType,
) -> Result<(ThinkingLm<B>, PolicyMeta)> {
    let path = dir.join("grpo.json");
    let text = std::fs::read_to_string(&path).map_err(|e| GrpoError::io(&path, e))?;
    let meta: PolicyMeta = serde_json::from_str(&text).map_err(|e| GrpoError::Config {
        path: path.clone(),
        key: "grpo.json".into(),
        reason: e.to_string(),
    })?;
    let device = base.device();
    let model = if meta.lora {
        if meta.hrpo {
            ThinkingLm::load_adapter(base, dir, dtype)?
        } else {
            let (lm, _) = base.load_lora(dir, dtype)?;
            ThinkingLm::without_thinking(lm)
        }
    } else {
        let lm =
            Pretrained::<B>::load(&dir.join("model").display().to_string(), &device, dtype)?.model;
        if meta.hrpo {
            let file = Checkpoint::open(&[dir.join("thinking.safetensors")])?;
            let h = lm.config().hidden_size;
            let (residual, _) =
                ThinkingResidual::unloaded(h, &device).load_hf(&file, "model.", dtype)?;
            let projection = match meta.thinking {
                ThinkingSource::Projection => Some(
                    ThinkingProjection::new(h, PROJECTION_INIT_STD, &device)
                        .load_hf(&file, "model.", dtype)?
                        .0,
                ),
                ThinkingSource::ProbabilityWeighted => None,
            };
            ThinkingLm {
                lm,
                residual,
                projection,
            }
        } else {
            ThinkingLm::without_thinking(lm)
        }
    };
    Ok((model, meta))
}
