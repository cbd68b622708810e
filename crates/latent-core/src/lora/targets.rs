//! The projections a LoRA can attach to, under their Hugging Face module names.
//!
//! Llama/Qwen: `q/k/v/o_proj` and `gate/up/down_proj` of every layer, one adapter each. GPT-2 fuses
//! q, k and v into one `c_attn` module, which this crate splits into three views; PEFT puts one
//! adapter on `c_attn` (`A` `[in, r]`, `B` `[r, q + k + v]`), so the split model holds it once per
//! layer in [`Attention::qkv_lora`] and adds the three column blocks of its update to the q, k and
//! v outputs — exactly `x A B`, and `A` stays one shared parameter under training.

use burn::prelude::*;

use super::config::LoraConfig;
use crate::hf::config::{Family, MlpKind, ModelConfig};
use crate::hf::families::hf_ref;
use crate::model::Attention;
use crate::model::{LoraLinear, LoraPair};
use crate::{CausalLm, Result};

/// One place an adapter can go.
pub(crate) enum Target<'a, B: Backend> {
    /// A projection with its own adapter.
    Linear(&'a mut LoraLinear<B>),
    /// GPT-2's fused `c_attn`: one adapter over the q, k and v views of an attention.
    FusedQkv(&'a mut Attention<B>),
}

impl<B: Backend> Target<'_, B> {
    /// `[d_in, d_out]` of the (fused) projection.
    pub(crate) fn dims(&self) -> [usize; 2] {
        match self {
            Target::Linear(l) => l.dims(),
            Target::FusedQkv(a) => {
                let [d_in, _] = a.q_proj.dims();
                [d_in, a.qkv_widths().iter().sum()]
            }
        }
    }

    /// The adapter slot.
    pub(crate) fn slot(&mut self) -> &mut Option<LoraPair<B>> {
        match self {
            Target::Linear(l) => &mut l.lora,
            Target::FusedQkv(a) => &mut a.qkv_lora,
        }
    }
}

/// The Hugging Face module owning the parameters at `path` (`layers.0.self_attn.q_proj` →
/// `model.layers.0.self_attn.q_proj`; GPT-2's q/k/v views → `transformer.h.0.attn.c_attn`).
pub(crate) fn hf_module(family: Family, path: &str) -> String {
    let key = hf_ref(family, &format!("{path}.weight"))
        .save_key()
        .to_string();
    key.strip_suffix(".weight").unwrap_or(&key).to_string()
}

/// The module of a parameter key or path (`model.norm.weight` → `model.norm`).
pub(crate) fn module_of(key: &str) -> &str {
    key.rsplit_once('.').map_or(key, |(module, _)| module)
}

/// Calls `f` with the Hugging Face module name and the slot of every place an adapter can go, in
/// layer order.
pub(crate) fn for_each_target<B: Backend>(
    model: &mut CausalLm<B>,
    mut f: impl FnMut(&str, Target<'_, B>) -> Result<()>,
) -> Result<()> {
    let family = model.config().family;
    for (i, layer) in model.layers.iter_mut().enumerate() {
        let attn = format!("layers.{i}.self_attn");
        let mlp = format!("layers.{i}.mlp");
        let a = &mut layer.self_attn;
        if family == Family::Gpt2 {
            f(
                &hf_module(family, &format!("{attn}.q_proj")),
                Target::FusedQkv(a),
            )?;
        } else {
            for (name, l) in [
                ("q_proj", &mut a.q_proj),
                ("k_proj", &mut a.k_proj),
                ("v_proj", &mut a.v_proj),
            ] {
                f(
                    &hf_module(family, &format!("{attn}.{name}")),
                    Target::Linear(l),
                )?;
            }
        }
        let o = &mut layer.self_attn.o_proj;
        f(
            &hf_module(family, &format!("{attn}.o_proj")),
            Target::Linear(o),
        )?;
        let m = &mut layer.mlp;
        for (name, l) in [
            ("gate_proj", m.gate_proj.as_mut()),
            ("up_proj", Some(&mut m.up_proj)),
            ("down_proj", Some(&mut m.down_proj)),
        ] {
            if let Some(l) = l {
                f(
                    &hf_module(family, &format!("{mlp}.{name}")),
                    Target::Linear(l),
                )?;
            }
        }
    }
    Ok(())
}

/// Trainable parameters the adapters of `lora` add to a model of `config` — `r · (d_in + d_out)`
/// per targeted projection — computed from the config alone (nothing is allocated), with the same
/// module names [`for_each_target`] gives the model's projections.
pub fn adapter_parameter_count(config: &ModelConfig, lora: &LoraConfig) -> usize {
    let family = config.family;
    let q = config.num_attention_heads * config.head_dim;
    let kv = config.num_key_value_heads * config.head_dim;
    let (h, f) = (config.hidden_size, config.intermediate_size);
    let mut total = 0;
    for i in 0..config.num_hidden_layers {
        let module = |path: &str| hf_module(family, &format!("layers.{i}.{path}"));
        let mut projections: Vec<(String, [usize; 2])> = if family == Family::Gpt2 {
            vec![(module("self_attn.q_proj"), [h, q + 2 * kv])]
        } else {
            vec![
                (module("self_attn.q_proj"), [h, q]),
                (module("self_attn.k_proj"), [h, kv]),
                (module("self_attn.v_proj"), [h, kv]),
            ]
        };
        projections.push((module("self_attn.o_proj"), [q, h]));
        if config.mlp == MlpKind::GatedSilu {
            projections.push((module("mlp.gate_proj"), [h, f]));
        }
        projections.push((module("mlp.up_proj"), [h, f]));
        projections.push((module("mlp.down_proj"), [f, h]));
        total += projections
            .iter()
            .filter(|(name, _)| lora.targets(name))
            .map(|(_, [d_in, d_out])| lora.r * (d_in + d_out))
            .sum::<usize>();
    }
    total
}
