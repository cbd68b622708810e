//! # latent-reasoning
//!
//! One dependency for the whole workspace: it re-exports every crate under a short name.
//!
//! | module | crate | what it holds |
//! |---|---|---|
//! | [`core`] | `latent-core` | Hugging Face-compatible causal LM backbones, devices, weights, tokenizers |
//! | [`datasets`] | `latent-datasets` | data loaders, answer extraction, synthetic tasks, batching |
//! | [`codi`] | `latent-codi` | CODI and hybrid explicit/latent reasoning |
//! | [`sgdd`] | `sgdd-diffusion` | semantic-guided masked diffusion |
//! | [`prm`] | `latent-prm` | latent reward model and best-of-N selection |
//! | [`grpo`] | `grpo-rl` | HRPO-style hybrid latent RL with GRPO |
//!
//! [`cli`] is the `latent` command: every recipe as `latent <group> <job>` (`cargo install --path .`).
#![forbid(unsafe_code)]

pub mod cli;

pub use grpo_rl as grpo;
pub use latent_codi as codi;
pub use latent_core as core;
pub use latent_datasets as datasets;
pub use latent_prm as prm;
pub use sgdd_diffusion as sgdd;
