//! # sgdd-diffusion
//!
//! SGDD, semantic-guided masked discrete diffusion: a **frozen BERT-family encoder** (BERT, RoBERTa,
//! MiniLM) turns a sentence into one vector (attention-masked mean of its last hidden state); a
//! trainable **bidirectional diffusion decoder** (self-attention with RoPE, cross-attention to the
//! projected vector, sinusoidal timestep embedding, tied head) learns to fill `<mask>` tokens;
//! **MaskGIT decoding** with classifier-free guidance on logits turns a vector back into text.
//! Phase 1 reconstructs Wikipedia sentences, phase 2 paraphrases QQP questions.
//!
//! It builds on `latent-core` (RoPE, norms, safetensors and hub loading, the shared training loop,
//! checkpoints, config files) and `latent-datasets` (Wikipedia and QQP loaders). See `docs/sgdd.md`
//! for usage, the masking-schedule convention and the metrics protocol.
//!
//! Modules: [`encoder`] (the frozen encoder), [`decoder`] (the trainable denoiser), [`schedule`]
//! (the one masking convention), [`diffusion`] (corruption and losses), [`maskgit`] (decoding with
//! guidance), [`metrics`] (EM, F1, BLEU), [`baselines`] (copy-nothing, unigram and nearest-neighbour
//! retrieval on the same held-out pairs), [`config`] / [`data`] / [`train`] / [`eval`] (runs),
//! [`error`], [`cli`] (the jobs `latent sgdd train|eval|generate`, which the examples run).
//!
//! ```no_run
//! use latent_core::CpuBackend;
//! use sgdd_diffusion::eval::generate_texts;
//! use sgdd_diffusion::train::load_trained;
//!
//! let device = Default::default();
//! let (config, encoder, model) = load_trained::<CpuBackend>("runs/sgdd/phase1_wiki/export".as_ref(), &[], &device)?;
//! let cond = encoder.embed_texts(&["How can I be a good geologist?".to_string()], 1, &device)?;
//! let (texts, _) = generate_texts(&model, &encoder, &cond, config.model.max_len, &config.decode, 1, None)?;
//! println!("{}", texts[0]);
//! # Ok::<(), sgdd_diffusion::SgddError>(())
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod baselines;
pub mod cli;
pub mod config;
pub mod data;
pub mod decoder;
pub mod diffusion;
pub mod encoder;
pub mod error;
pub mod eval;
pub mod maskgit;
pub mod metrics;
pub mod schedule;
pub mod train;

pub use error::{Result, SgddError};
