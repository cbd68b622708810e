//! # latent-prm
//!
//! A reward model over **latent** reasoning paths, and best-of-N selection with it (design 003,
//! `../shared/specs/latent-prm.md`, LatentTTS's LatentRM). The pipeline:
//!
//! 1. [`collect`]: a CODI reasoner of `latent-codi` decodes each question N times with Gaussian
//!    noise on its continuous thoughts; the thoughts `[steps, D]`, the decoded answer and its
//!    correctness (and optionally per-step Monte-Carlo values) go to safetensors shards with a JSON
//!    metadata file ([`paths`]); interrupted collections resume.
//! 2. [`model`]: a decoder backbone of `latent-core` (any supported family) reads
//!    `inputs_embeds` = [question embeddings, thoughts], pools its final hidden states over the
//!    attention mask and maps them to one scalar; [`loss`]: MSE (design), BCE or LatentRM's
//!    listwise softmax across the N paths of a question.
//! 3. [`train`]: full fine-tuning on the workspace's one training loop, with checkpoints and resume.
//! 4. [`eval`] and [`select`]: score quality (MSE, MAE, AUROC) and best-of-N curves against greedy,
//!    random, majority vote, score-weighted vote and pass@N, with bootstrap error bars.
//!
//! Jobs ([`cli`]): `latent prm collect|train|eval|demo` (the examples `prm_collect`, `prm_train`,
//! `prm_eval` and the CPU-sized `prm_demo` wrap them; see `docs/prm.md`).
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod batch;
pub mod cli;
pub mod collect;
pub mod config;
pub mod demo;
mod error;
pub mod eval;
pub mod loss;
pub mod model;
pub mod paths;
pub mod select;
pub mod train;

pub use error::{PrmError, Result};
