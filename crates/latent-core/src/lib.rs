//! # latent-core
//!
//! The foundation of the latent-reasoning workspace: decoder-only language models that load real
//! Hugging Face checkpoints (Llama, Qwen2, Qwen3, GPT-2), accept input **embeddings** in place of
//! tokens at chosen positions, and expose the hidden state of every layer. Every method crate
//! (CODI, hybrid latent RL, the latent reward model) builds on [`CausalLm`] and its forward
//! contract ([`LmInput`] → [`LmOutput`]).
//!
//! ```no_run
//! use burn::tensor::{DType, Int, Tensor};
//! use latent_core::{CpuBackend, LmInput, Pretrained};
//!
//! let device = Default::default();
//! let lm = Pretrained::<CpuBackend>::load("path/to/model", &device, DType::F32)?;
//! let ids = Tensor::<CpuBackend, 2, Int>::from_ints([[1, 2, 3]], &device);
//! let out = lm.model.forward(LmInput::ids(ids).output_hidden_states(true))?;
//! assert_eq!(out.hidden_states.len(), lm.model.config().num_hidden_layers + 1);
//! # Ok::<(), latent_core::CoreError>(())
//! ```
//!
//! Modules, from the bottom up: [`device`] (backend selection), [`hf`] (config, safetensors, hub,
//! tokenizer), [`model`] (the backbones, KV cache, per-token log-probabilities), [`lora`]
//! (PEFT-compatible LoRA adapters), [`infer`] (stepper, the one decoding loop, sampling,
//! `generate`), [`latent`] (thinking residual, thinking states, HRPO rollouts), [`train`] (the
//! training loop).
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod atomic;
pub mod backend_rng;
pub mod cli;
pub mod config_file;
pub mod device;
mod error;
pub mod hf;
pub mod infer;
pub mod latent;
pub mod lora;
pub mod model;
pub mod stop;
pub mod train;

pub use backend_rng::{seed_backend, BackendRng};
#[cfg(feature = "cuda")]
pub use device::CudaBackend;
pub use device::{
    parse_dtype, peak_rss_mb, BackendJob, CpuBackend, DeviceList, DeviceSpec, DevicesJob,
};
pub use error::{CoreError, Result};
pub use hf::config::{Family, ModelConfig};
pub use hf::safetensors::SaveDtype;
pub use model::{CausalLm, LmInput, LmOutput, Pretrained};
