//! A causal LM with HRPO's thinking residual and, optionally, the learned `thinking_projection`:
//! the model hybrid latent RL trains and rolls out, and its adapter directory in PEFT's layout.
//!
//! The residual and the projection live beside the [`CausalLm`], as in HRPO's patched
//! `Qwen2Model` (children of `model.`): a PEFT adapter keeps them in `modules_to_save`, under
//! `base_model.model.model.thinking_residual_gate_r.weight`, …,
//! `base_model.model.model.thinking_residual_Lambda.Lambda` and
//! `base_model.model.model.thinking_projection.weight`.

use std::path::Path;

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::DType;

use super::residual::{Fused, ThinkingResidual, ThinkingResidualConfig, RESIDUAL_MODULES};
use super::thinking_state::{ThinkingProjection, ThinkingSource, PROJECTION_MODULE};
use crate::hf::config::Family;
use crate::hf::safetensors::HostTensor;
use crate::lora::{LoraConfig, PEFT_PREFIX};
use crate::{CausalLm, CoreError, LmInput, LmOutput, Result};

/// Std of a fresh `thinking_projection` (design document 002).
pub const PROJECTION_INIT_STD: f64 = 0.001;

/// A causal LM plus the modules that turn thinking states into its inputs.
#[derive(Module, Debug)]
pub struct ThinkingLm<B: Backend> {
    /// The language model (LoRA adapters, if any, live in it).
    pub lm: CausalLm<B>,
    /// The gated fusion of token embeddings and thinking states.
    pub residual: ThinkingResidual<B>,
    /// `thinking_projection`, present when thinking states come from it.
    pub projection: Option<ThinkingProjection<B>>,
}

/// Mixed input embeddings and the retention gate per position.
#[derive(Debug, Clone)]
pub struct MixedInput<B: Backend> {
    /// `[batch, seq, hidden]`: the fused embedding where the thinking mask is set, the token
    /// embedding elsewhere.
    pub embeds: Tensor<B, 3>,
    /// `[batch, seq]` f32: the mean over hidden dimensions of the gate `a` (1 where not mixed).
    pub gate_mean: Tensor<B, 2>,
}

impl<B: Backend> ThinkingLm<B> {
    /// Wraps `lm` with a fresh residual and, for [`ThinkingSource::Projection`], a fresh projection
    /// (N(0, 0.001)), drawn from the backend's RNG.
    pub fn new(
        lm: CausalLm<B>,
        residual: &ThinkingResidualConfig,
        source: ThinkingSource,
    ) -> Result<Self> {
        let device = lm.device();
        let h = lm.config().hidden_size;
        let dtype = lm.embed_tokens.weight.val().dtype();
        Ok(Self {
            residual: residual.init::<B>(h, &device)?.cast(dtype),
            projection: (source == ThinkingSource::Projection).then(|| {
                crate::model::cast_module(
                    ThinkingProjection::new(h, PROJECTION_INIT_STD, &device),
                    dtype,
                )
            }),
            lm,
        })
    }

    /// `lm` as a model that never mixes: its residual is created lazily (zeros, never drawn),
    /// frozen and unused. For evaluating or training plain token policies through the same code.
    pub fn without_thinking(lm: CausalLm<B>) -> Self {
        let h = lm.config().hidden_size;
        let device = lm.device();
        Self {
            lm,
            residual: ThinkingResidual::unloaded(h, &device).no_grad(),
            projection: None,
        }
    }

    /// Where this model's thinking states come from.
    pub fn source(&self) -> ThinkingSource {
        match self.projection {
            Some(_) => ThinkingSource::Projection,
            None => ThinkingSource::ProbabilityWeighted,
        }
    }

    /// The residual applied to the token embeddings of `ids` `[batch, seq]` and `states`
    /// `[batch, seq, hidden]` (see [`ThinkingResidual::forward`]).
    pub fn fuse(&self, ids: Tensor<B, 2, Int>, states: Tensor<B, 3>) -> Fused<B> {
        self.residual.forward(self.lm.embed(ids), states)
    }

    /// Input embeddings with the thinking states mixed in where `thinking_mask` `[batch, seq]` is
    /// true: `ids` `[batch, seq]`, `states` `[batch, seq, hidden]` (ignored where the mask is false).
    pub fn mixed_input(
        &self,
        ids: Tensor<B, 2, Int>,
        thinking_mask: Tensor<B, 2, Bool>,
        states: Tensor<B, 3>,
    ) -> Result<MixedInput<B>> {
        let [b, s] = ids.dims();
        let h = self.lm.config().hidden_size;
        if thinking_mask.dims() != [b, s] || states.dims() != [b, s, h] {
            return Err(CoreError::Shape(format!(
                "ids {:?}, thinking mask {:?} and thinking states {:?} disagree (hidden {h})",
                [b, s],
                thinking_mask.dims(),
                states.dims()
            )));
        }
        let e = self.lm.embed(ids);
        let Fused { x, a } = self.residual.forward(e.clone(), states);
        let mask3 = thinking_mask
            .clone()
            .unsqueeze_dim::<3>(2)
            .expand([b, s, h]);
        let gate_mean = a
            .mean_dim(2)
            .reshape([b, s])
            .mask_fill(thinking_mask.bool_not(), 1.0);
        Ok(MixedInput {
            embeds: e.mask_where(mask3, x),
            gate_mean,
        })
    }

    /// A full forward with thinking states mixed in (HRPO's training forward with stored states):
    /// shapes as [`ThinkingLm::mixed_input`], plus `attention_mask` `[batch, seq]`; the output is
    /// [`CausalLm::forward`]'s.
    pub fn forward_mixed(
        &self,
        ids: Tensor<B, 2, Int>,
        thinking_mask: Tensor<B, 2, Bool>,
        states: Tensor<B, 3>,
        attention_mask: Option<Tensor<B, 2, Int>>,
    ) -> Result<LmOutput<B>> {
        let mixed = self.mixed_input(ids, thinking_mask, states)?;
        let input = LmInput::embeds(mixed.embeds);
        self.lm.forward(match attention_mask {
            Some(m) => input.attention_mask(m),
            None => input,
        })
    }

    /// The same model with the LM in `dtype`; the gates and the projection follow, Λ stays f32.
    pub fn cast(self, dtype: DType) -> Self {
        Self {
            lm: self.lm.cast_params(dtype),
            residual: self.residual.cast(dtype),
            projection: self.projection.map(|p| crate::model::cast_module(p, dtype)),
        }
    }

    /// The key prefix of the residual and projection inside a checkpoint of this family.
    pub fn module_prefix(&self) -> &'static str {
        module_prefix(self.lm.config().family)
    }

    /// The residual's and the projection's tensors under their checkpoint keys, prefixed by
    /// `prefix` (`""` for a full checkpoint, [`PEFT_PREFIX`] in an adapter).
    pub fn thinking_tensors(&self, prefix: &str) -> Vec<(String, HostTensor)> {
        let prefix = format!("{prefix}{}", self.module_prefix());
        let mut out = self.residual.hf_tensors(&prefix);
        if let Some(p) = &self.projection {
            out.extend(p.hf_tensors(&prefix));
        }
        out
    }

    /// `config` with the residual (and projection) added to `modules_to_save`, as HRPO's
    /// `get_peft_model` call lists them.
    pub fn adapter_config(&self, config: &LoraConfig) -> LoraConfig {
        let mut config = config.clone();
        let saved = config.modules_to_save.get_or_insert_with(Vec::new);
        let mut names: Vec<&str> = RESIDUAL_MODULES.to_vec();
        if self.projection.is_some() {
            names.push(PROJECTION_MODULE);
        }
        for name in names {
            if !saved.iter().any(|m| m == name) {
                saved.push(name.to_string());
            }
        }
        config
    }

    /// Writes the LoRA adapters, the LM's `modules_to_save` and the residual (+ projection) in PEFT's
    /// layout (see [`CausalLm::save_lora`]); `adapter_config.json` lists the residual's modules.
    pub fn save_adapter(&self, dir: impl AsRef<Path>, config: &LoraConfig) -> Result<()> {
        let config = self.adapter_config(config);
        self.lm
            .save_lora_with(dir, &config, self.thinking_tensors(PEFT_PREFIX))
    }

    /// Loads an adapter directory written by PEFT for HRPO (or by [`ThinkingLm::save_adapter`]) onto
    /// `base`: LoRA on its projections, the LM's modules to save, the residual and, when the file
    /// holds `thinking_projection.weight`, the projection. Weights are converted to `dtype` (Λ stays
    /// f32). Errors name the file and key of a missing, misshapen or unused tensor.
    pub fn load_adapter(base: CausalLm<B>, dir: impl AsRef<Path>, dtype: DType) -> Result<Self> {
        let dir = dir.as_ref();
        let device = base.device();
        let h = base.config().hidden_size;
        let mut loaded = base.load_lora_parts(dir, dtype)?;
        let prefix = format!(
            "{PEFT_PREFIX}{}",
            module_prefix(loaded.model.config().family)
        );
        let (residual, used) =
            ThinkingResidual::unloaded(h, &device).load_hf(&loaded.file, &prefix, dtype)?;
        loaded.used.extend(used);
        let projection_key = format!("{prefix}{PROJECTION_MODULE}.weight");
        let projection = if loaded.file.contains(&projection_key) {
            let (p, key) =
                ThinkingProjection::new(h, 0.0, &device).load_hf(&loaded.file, &prefix, dtype)?;
            loaded.used.insert(key);
            Some(p)
        } else {
            None
        };
        loaded.check_all_used()?;
        Ok(Self {
            lm: loaded.model,
            residual,
            projection,
        })
    }
}

impl<B: AutodiffBackend> ThinkingLm<B> {
    /// A detached inference copy for rollouts: the LM with its adapters merged
    /// ([`CausalLm::rollout_copy`]), the residual and projection as they are.
    pub fn rollout_copy(&self) -> ThinkingLm<B::InnerBackend> {
        ThinkingLm {
            lm: self.lm.rollout_copy(),
            residual: self.residual.valid(),
            projection: self.projection.as_ref().map(|p| p.valid()),
        }
    }
}

/// Where the base model's own modules sit in a checkpoint of `family` (`model.`; GPT-2:
/// `transformer.`): the residual and the projection are their siblings.
pub fn module_prefix(family: Family) -> &'static str {
    match family {
        Family::Gpt2 => "transformer.",
        Family::Llama | Family::Qwen2 | Family::Qwen3 => "model.",
    }
}
