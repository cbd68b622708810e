//! # latent-codi
//!
//! CODI (Shen et al., 2025: continuous chain-of-thought by self-distillation) on Burn, built on
//! `latent-core`'s backbones, KV cache, stepper and training loop, and `latent-datasets`'
//! GSM8k-Aug loaders. One model learns two tasks at once: the **teacher** writes an explicit CoT,
//! the **student** replaces it with `num_latent` continuous thoughts (projected last hidden states
//! fed back as input embeddings); the student's hidden states at the token before the answer are
//! pulled to the teacher's at every layer.
//!
//! - [`tokens`]: the `pad`/`<bot>`/`<eot>` ids; [`projection`]: the thought projection;
//!   [`model`]: [`CodiModel`] and its saved layout (HF directory + `projection.safetensors` +
//!   `codi.json`); [`reference`]: checkpoints of the reference PyTorch implementation (LoRA
//!   unmerged, `pytorch_model.bin` read by `burn-store`'s `PytorchReader`);
//! - [`data`]: the reference preprocessing; [`batch`]: teacher/student micro-batches;
//! - [`loss`]: teacher and student passes, the three-term loss; [`step`]: the [`TrainStep`] of CODI
//!   and of the CoT-SFT / No-CoT-SFT baselines;
//! - [`eval`]: batched greedy evaluation with latents, accuracy and latent probing;
//! - [`hybrid`]: hybrid explicit/latent reasoning (Phase 1 data, Phase 2 training, adaptive
//!   decoding);
//! - [`config`]: the YAML run config; [`run`]: training and evaluation drivers used by the
//!   jobs; [`experiment`]: the CPU-sized end-to-end experiment;
//! - [`cli`]: the jobs `latent codi train|eval|phase1|phase2|pipeline|experiment` (what the
//!   examples run).
//!
//! See `docs/codi.md` for the recipe and `docs/results.md` for measured results.
//!
//! [`TrainStep`]: latent_core::train::TrainStep
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod batch;
pub mod cli;
pub mod config;
pub mod data;
mod error;
pub mod eval;
pub mod experiment;
pub mod hybrid;
pub mod loss;
pub mod model;
pub mod projection;
pub mod reference;
pub mod run;
pub mod step;
pub mod tokens;

use serde::{Deserialize, Serialize};

pub use error::{CodiError, Result};
pub use model::{CodiMeta, CodiModel};
pub use tokens::SpecialTokens;

/// What a run trains (and so how its model is evaluated).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// CODI: teacher CE + student CE + distillation; evaluated with continuous thoughts.
    #[default]
    Codi,
    /// Explicit CoT fine-tuning; evaluated by writing the CoT.
    CotSft,
    /// Question → answer fine-tuning, no CoT.
    NoCotSft,
}

impl Task {
    /// Whether evaluation feeds continuous thoughts.
    pub fn uses_latents(self) -> bool {
        self == Task::Codi
    }

    /// Short name for tables.
    pub fn label(self) -> &'static str {
        match self {
            Task::Codi => "CODI",
            Task::CotSft => "CoT-SFT",
            Task::NoCotSft => "No-CoT-SFT",
        }
    }
}
