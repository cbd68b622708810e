//! CODI (continuous chain-of-thought via self-distillation) and its hybrid explicit/latent extension.
//!
//! **Status:** not implemented yet. It will hold the teacher/student passes, the three-term loss, data preprocessing, evaluation, and the hybrid Phase 1/Phase 2 pipeline with entropy-adaptive switching, all built on `latent-core`'s backbones, stepper and trainer.
//!
//! See `docs/architecture.md` for how this crate fits into the workspace.
#![forbid(unsafe_code)]
