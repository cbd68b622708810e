//! HRPO-style hybrid latent RL: gated thinking residual, thinking states and GRPO training.
//!
//! **Status:** not implemented yet. It will hold rollouts on `latent-core`'s stepper, rewards, group-relative advantages, the GRPO loss and the two-pass thinking-projection trainer.
//!
//! See `docs/architecture.md` for how this crate fits into the workspace.
#![forbid(unsafe_code)]
