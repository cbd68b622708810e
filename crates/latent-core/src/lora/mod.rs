//! LoRA (low-rank adaptation) with PEFT-compatible adapters.
//!
//! [`CausalLm::with_lora`](crate::CausalLm::with_lora) attaches fresh adapters to the projections
//! a [`LoraConfig`] names (Llama/Qwen `q/k/v/o_proj`, `gate/up/down_proj`; GPT-2 `c_attn`,
//! `c_proj`, `c_fc`) and freezes the base except `modules_to_save`, which are trained in full
//! (PEFT keeps an untouched original beside the trained copy; here the module itself is trained).
//! [`CausalLm::load_lora`](crate::CausalLm::load_lora) and
//! [`CausalLm::save_lora`](crate::CausalLm::save_lora) read and write PEFT's
//! `adapter_config.json` + `adapter_model.safetensors`; [`CausalLm::merge_lora`](crate::CausalLm::merge_lora)
//! folds the adapters into the base weights.
//!
//! ```no_run
//! use burn::tensor::DType;
//! use latent_core::lora::LoraConfig;
//! use latent_core::{CpuBackend, Pretrained};
//!
//! let base = Pretrained::<CpuBackend>::load("path/to/model", &Default::default(), DType::F32)?;
//! let mut config = LoraConfig::new(8, 16.0, &["q_proj", "k_proj", "v_proj", "o_proj"]);
//! config.lora_dropout = 0.05;
//! let model = base.model.with_lora(&config)?;   // train it: only the adapters get gradients
//! model.save_lora("adapter-dir", &config)?;      // PEFT: PeftModel.from_pretrained(base, "adapter-dir")
//! model.merge_lora().save_pretrained("merged-dir", latent_core::SaveDtype::F32)?;
//! # Ok::<(), latent_core::CoreError>(())
//! ```
//!
//! A model carrying adapters saved with `save_pretrained` writes its base weights only; merge first.
//!
//! For RL: [`CausalLm::without_adapters`](crate::CausalLm::without_adapters) is the same model with
//! its adapters off (the GRPO reference policy; the base weights are shared, not copied), and
//! [`CausalLm::rollout_copy`](crate::CausalLm::rollout_copy) a merged, detached copy for rollouts.

mod apply;
mod config;
mod io;
mod targets;

pub use crate::model::{is_adapter_param, LoraLinear, LoraPair};
pub use config::LoraConfig;
pub use io::{LoadedAdapter, ADAPTER_CONFIG, ADAPTER_WEIGHTS, PEFT_PREFIX};
pub use targets::adapter_parameter_count;
