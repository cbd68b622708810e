//! Latent process reward model: scores sequences of latent reasoning vectors and selects the best of N paths.
//!
//! **Status:** not implemented yet. It will hold path collection, the pooled scoring head over a causal LM backbone, its trainer and best-of-N evaluation.
//!
//! See `docs/architecture.md` for how this crate fits into the workspace.
#![forbid(unsafe_code)]
