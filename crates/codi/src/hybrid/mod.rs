//! Hybrid explicit/latent reasoning (spec §7, design document 000): a CODI model learns to write
//! hard CoT steps as text and easy ones as continuous thoughts, and to switch between the two at
//! inference by its own uncertainty.
//!
//! - [`controller`]: the per-sequence mode controller (adaptive entropy rules and the baselines);
//! - [`decode`]: batched hybrid decoding with per-sequence modes, and its accuracy table;
//! - [`schema`]: the versioned JSON file of hybrid samples and its validator;
//! - [`phase1`]: entropy-guided sample generation with a CoT model;
//! - [`batch`]: Phase 2 samples tokenized and collated for the batched student pass;
//! - [`loss`]: the Phase 2 loss (hybrid student pass, teacher-aligned distillation, reference CE);
//! - [`phase2`]: the Phase 2 training step and driver;
//! - [`settings`]: the Phase 1 settings saved with a Phase 2 model (`hybrid.json`);
//! - [`pipeline`]: CoT-SFT → CODI → Phase 1 → Phase 2 → every decoding mode, at CPU size.
//!
//! See `docs/codi-hybrid.md`.

pub mod batch;
pub mod controller;
pub mod decode;
pub mod loss;
pub mod phase1;
pub mod phase2;
pub mod pipeline;
pub mod schema;
pub mod settings;
#[cfg(test)]
pub(crate) mod testing;

pub use controller::{BaselineMode, Controller, ControllerConfig, Signals, SwitchRule};
pub use decode::{evaluate_hybrid, HybridRecord, HybridSummary};
pub use settings::HybridSettings;
