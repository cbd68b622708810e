//! Attaching fresh adapters, freezing the base, and merging adapters into the base weights.

use burn::module::AutodiffModule;
use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

use super::config::LoraConfig;
use super::targets::{for_each_target, hf_module, module_of, Target};
use crate::hf::config::Family;
use crate::model::lora_linear::add_to_weight;
use crate::model::{is_adapter_param, LoraPair};
use crate::{CausalLm, CoreError, Result};

impl<B: Backend> CausalLm<B> {
    /// Attaches a fresh adapter (PEFT's initialisation: `B = 0`, so the logits do not change) to
    /// every projection `config` targets, and freezes everything else except `modules_to_save`.
    ///
    /// Errors when no projection matches `target_modules` (as PEFT does).
    pub fn with_lora(self, config: &LoraConfig) -> Result<Self> {
        config.check().map_err(|(key, reason)| CoreError::Lora {
            key: key.into(),
            reason,
        })?;
        let device = self.device();
        let mut model = self.freeze_for_lora(config);
        let attached = attach(&mut model, config, |_, dims| {
            Ok(LoraPair::new(
                dims,
                config.r,
                config.scaling(),
                config.lora_dropout,
                &device,
            ))
        })?;
        if attached == 0 {
            return Err(CoreError::Lora {
                key: "target_modules".into(),
                reason: no_target(config, model.config().family),
            });
        }
        Ok(model)
    }

    /// Freezes every parameter except those of `config.modules_to_save` (adapters attached later
    /// are trainable).
    pub(crate) fn freeze_for_lora(self, config: &LoraConfig) -> Self {
        let family = self.config().family;
        self.no_grad().map(&mut Unfreeze {
            path: Vec::new(),
            select: |path: &str| config.saves(&hf_module(family, module_of(path))),
        })
    }

    /// Folds every adapter into its base weight (`W + scaling · A B`) and removes it; the result is a
    /// plain model that [`CausalLm::save_pretrained`] writes for `transformers`.
    pub fn merge_lora(mut self) -> Self {
        for_each_target(&mut self, |_, mut target| {
            let Some(pair) = target.slot().take() else {
                return Ok(());
            };
            let dense = pair.dense();
            match target {
                Target::Linear(l) => l.weight = add_to_weight(l.weight.clone(), dense),
                Target::FusedQkv(a) => {
                    let mut start = 0;
                    let widths = a.qkv_widths();
                    for (l, w) in [&mut a.q_proj, &mut a.k_proj, &mut a.v_proj]
                        .into_iter()
                        .zip(widths)
                    {
                        let part = dense.clone().narrow(1, start, w);
                        l.weight = add_to_weight(l.weight.clone(), part);
                        start += w;
                    }
                }
            }
            Ok(())
        })
        .expect("merging cannot fail");
        self
    }
}

impl<B: Backend> CausalLm<B> {
    /// The same model with every adapter removed, sharing its weights with `self` (tensors are
    /// reference-counted, nothing is copied). Under autodiff it is the GRPO reference policy: run
    /// it without gradients (`.valid()` or detached inputs).
    ///
    /// `modules_to_save` stay as they are: they replaced the base weights when the adapter was
    /// loaded (or were trained in place), so this is the base model only when the adapter has no
    /// `modules_to_save` of the LM. PEFT's `disable_adapter()` would restore the originals; where
    /// that matters, keep a copy of the model from before loading or training instead.
    pub fn without_adapters(&self) -> Self {
        let mut model = self.clone();
        for_each_target(&mut model, |_, mut target| {
            *target.slot() = None;
            Ok(())
        })
        .expect("removing cannot fail");
        model
    }
}

impl<B: AutodiffBackend> CausalLm<B> {
    /// A detached inference copy with the adapters merged into the base weights (`W + scaling · A B`,
    /// one new weight per adapted projection; the others are shared): fast rollouts from the policy
    /// being trained.
    pub fn rollout_copy(&self) -> CausalLm<B::InnerBackend> {
        self.valid().merge_lora()
    }
}

/// Fills the slot of every targeted projection with `make(module, [d_in, d_out])`; returns how many.
pub(crate) fn attach<B: Backend>(
    model: &mut CausalLm<B>,
    config: &LoraConfig,
    mut make: impl FnMut(&str, [usize; 2]) -> Result<LoraPair<B>>,
) -> Result<usize> {
    let mut count = 0;
    for_each_target(model, |module, mut target| {
        if config.targets(module) {
            *target.slot() = Some(make(module, target.dims())?);
            count += 1;
        }
        Ok(())
    })?;
    Ok(count)
}

/// Why a config whose `target_modules` select nothing in a model of `family` is refused.
pub(crate) fn no_target(config: &LoraConfig, family: Family) -> String {
    format!(
        "{:?} match no projection of this {family:?} model",
        config.target_modules
    )
}

/// Sets `require_grad` on the parameters whose path `select` accepts (adapter matrices excluded).
struct Unfreeze<F> {
    path: Vec<String>,
    select: F,
}

impl<B: Backend, F: Fn(&str) -> bool> ModuleMapper<B> for Unfreeze<F> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let path = self.path.join(".");
        if !is_adapter_param(&path) && (self.select)(&path) {
            param.set_require_grad(true)
        } else {
            param
        }
    }
}
