//! `hybrid.json`: the Phase 1 settings a Phase 2 model was trained with, saved beside its
//! `codi.json` so that hybrid decoding follows them (the step controller feeds
//! `latents_per_step` thoughts per latent step, as Phase 1 replaced them).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::schema::GeneratorInfo;
use crate::{CodiError, Result};

/// The file name inside a `final_model/` directory.
pub const HYBRID_SETTINGS_FILE: &str = "hybrid.json";

/// What hybrid decoding needs from Phase 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HybridSettings {
    /// Thoughts per replaced step.
    pub latents_per_step: usize,
    /// Largest run of thoughts.
    pub max_latent_steps: usize,
    /// Step separator of the CoT text.
    pub step_separator: String,
    /// Phase 1's entropy threshold (nats): steps below it were made latent.
    pub entropy_threshold: f32,
}

impl From<&GeneratorInfo> for HybridSettings {
    fn from(g: &GeneratorInfo) -> Self {
        Self {
            latents_per_step: g.latents_per_step,
            max_latent_steps: g.max_latent_steps,
            step_separator: g.step_separator.clone(),
            entropy_threshold: g.entropy_threshold,
        }
    }
}

impl HybridSettings {
    /// Writes `dir/hybrid.json`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(HYBRID_SETTINGS_FILE);
        let text = serde_json::to_string_pretty(self).expect("json");
        std::fs::write(&path, text).map_err(|e| CodiError::io(&path, e))
    }

    /// Reads `dir/hybrid.json`; `None` when the model has none (plain CODI).
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(HYBRID_SETTINGS_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| CodiError::io(&path, e))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| CodiError::Checkpoint {
                path: path.clone(),
                reason: format!("line {}: {e}", e.line()),
            })
    }
}
