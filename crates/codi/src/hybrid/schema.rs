//! The hybrid data file written by Phase 1 and read by Phase 2: one JSON document, schema
//! [`HYBRID_SCHEMA`] version [`HYBRID_SCHEMA_VERSION`] (documented in `docs/codi-hybrid.md`).
//!
//! ```json
//! {"schema": "latent-reasoning/codi-hybrid-data", "version": 1,
//!  "generator": {...how the file was made...},
//!  "samples": [{"question": "...", "answer": "2", "strategy": "entropy",
//!               "steps": ["<<4+1=5>>", "<<5-2=3>>"], "step_entropies": [0.0683, 0.0337],
//!               "segments": [{"type": "explicit", "text": "<<4+1=5>>", "steps": [0]},
//!                            {"type": "latent", "count": 2, "replaces": [1]}]}]}
//! ```
//!
//! [`validate`] checks every rule of the schema; [`read_hybrid_file`] parses (unknown keys are
//! errors) and validates.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{CodiError, Result};

/// Schema name of the file.
pub const HYBRID_SCHEMA: &str = "latent-reasoning/codi-hybrid-data";
/// Schema version this crate writes and reads.
pub const HYBRID_SCHEMA_VERSION: u32 = 1;

/// How a sample's latent steps were chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Steps whose entropy is below the global threshold are latent.
    Entropy,
    /// As many steps as the entropy rule would pick, at random positions.
    Random,
    /// Every step explicit.
    Explicit,
}

impl Strategy {
    /// All strategies, in report order.
    pub const ALL: [Strategy; 3] = [Strategy::Entropy, Strategy::Random, Strategy::Explicit];
}

/// One piece of the CoT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Segment {
    /// Steps written as text.
    Explicit {
        /// The steps joined by the generator's separator.
        text: String,
        /// Indices of the steps (consecutive).
        steps: Vec<usize>,
    },
    /// Steps replaced by continuous thoughts between `<bot>` and `<eot>`.
    Latent {
        /// Thoughts.
        count: usize,
        /// Indices of the replaced steps (consecutive).
        replaces: Vec<usize>,
    },
}

impl Segment {
    /// Indices of the steps this segment covers.
    pub fn steps(&self) -> &[usize] {
        match self {
            Segment::Explicit { steps, .. } => steps,
            Segment::Latent { replaces, .. } => replaces,
        }
    }

    /// Whether the segment is latent.
    pub fn is_latent(&self) -> bool {
        matches!(self, Segment::Latent { .. })
    }
}

/// One hybrid training sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HybridSample {
    /// The question (cleaned as the evaluator feeds it).
    pub question: String,
    /// The answer number as written after `####`.
    pub answer: String,
    /// How the latent steps were chosen.
    pub strategy: Strategy,
    /// The kept CoT steps, in order (the teacher's explicit CoT).
    pub steps: Vec<String>,
    /// Mean predictive entropy (nats) of each step's tokens under the CoT model.
    pub step_entropies: Vec<f32>,
    /// The CoT in order: every step exactly once.
    pub segments: Vec<Segment>,
}

impl HybridSample {
    /// Latent runs.
    pub fn latent_runs(&self) -> usize {
        self.segments.iter().filter(|s| s.is_latent()).count()
    }
}

/// How the file was produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorInfo {
    /// The CoT model.
    pub model: String,
    /// The data file.
    pub data: String,
    /// What joins consecutive steps of one explicit segment.
    pub step_separator: String,
    /// Entropy below which a step is latent (entropy strategy).
    pub entropy_threshold: f32,
    /// The quantile of all step entropies the threshold is.
    pub latent_quantile: f64,
    /// Thoughts per replaced step.
    pub latents_per_step: usize,
    /// Largest thought count of one latent run.
    pub max_latent_steps: usize,
    /// Share of entropy-guided samples.
    pub entropy_ratio: f64,
    /// Share of random samples (the rest is explicit).
    pub random_ratio: f64,
    /// Seed of the strategy draws.
    pub seed: u64,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HybridFile {
    /// [`HYBRID_SCHEMA`].
    pub schema: String,
    /// [`HYBRID_SCHEMA_VERSION`].
    pub version: u32,
    /// How it was made.
    pub generator: GeneratorInfo,
    /// The samples.
    pub samples: Vec<HybridSample>,
}

/// Checks `file` against the schema; `path` names it in errors.
pub fn validate(file: &HybridFile, path: &Path) -> Result<()> {
    let fail = |sample: usize, reason: String| {
        Err(CodiError::Schema {
            path: path.to_path_buf(),
            sample,
            reason,
        })
    };
    if file.schema != HYBRID_SCHEMA || file.version != HYBRID_SCHEMA_VERSION {
        return fail(
            usize::MAX,
            format!(
                "schema {:?} version {} (this crate reads {HYBRID_SCHEMA:?} version {HYBRID_SCHEMA_VERSION})",
                file.schema, file.version
            ),
        );
    }
    let g = &file.generator;
    if g.latents_per_step == 0 || g.max_latent_steps == 0 {
        return fail(
            usize::MAX,
            "latents_per_step and max_latent_steps must be positive".into(),
        );
    }
    for (i, s) in file.samples.iter().enumerate() {
        if s.question.trim().is_empty() {
            return fail(i, "empty question".into());
        }
        if !s.answer.starts_with(|c: char| c.is_ascii_digit()) {
            return fail(
                i,
                format!("answer {:?} does not start with a digit", s.answer),
            );
        }
        if s.step_entropies.len() != s.steps.len() {
            return fail(
                i,
                format!(
                    "{} step entropies for {} steps",
                    s.step_entropies.len(),
                    s.steps.len()
                ),
            );
        }
        if let Some(h) = s
            .step_entropies
            .iter()
            .find(|h| !(h.is_finite() && **h >= 0.0))
        {
            return fail(
                i,
                format!("step entropy {h} is not a finite non-negative number"),
            );
        }
        let covered: Vec<usize> = s.segments.iter().flat_map(|g| g.steps().to_vec()).collect();
        if covered != (0..s.steps.len()).collect::<Vec<_>>() {
            return fail(
                i,
                format!(
                    "segments cover steps {covered:?}, not each of the {} steps once in order",
                    s.steps.len()
                ),
            );
        }
        for (k, seg) in s.segments.iter().enumerate() {
            if seg.steps().is_empty() {
                return fail(i, format!("segment {k} covers no step"));
            }
            if k > 0 && s.segments[k - 1].is_latent() == seg.is_latent() {
                return fail(
                    i,
                    format!(
                        "segments {} and {k} are of the same type and must be one",
                        k - 1
                    ),
                );
            }
            match seg {
                Segment::Explicit { text, steps } => {
                    let joined: Vec<&str> = steps.iter().map(|&j| s.steps[j].as_str()).collect();
                    if *text != joined.join(&g.step_separator) {
                        return fail(
                            i,
                            format!("segment {k}: text {text:?} is not its steps joined"),
                        );
                    }
                }
                Segment::Latent { count, .. } => {
                    if *count == 0 || *count > g.max_latent_steps {
                        return fail(
                            i,
                            format!(
                                "segment {k}: {count} thoughts (1 to {} allowed)",
                                g.max_latent_steps
                            ),
                        );
                    }
                }
            }
        }
        if s.strategy == Strategy::Explicit && s.latent_runs() > 0 {
            return fail(i, "an explicit sample has latent segments".into());
        }
    }
    Ok(())
}

/// Reads and validates a hybrid data file.
pub fn read_hybrid_file(path: &Path) -> Result<HybridFile> {
    let text = std::fs::read_to_string(path).map_err(|e| CodiError::io(path, e))?;
    let file: HybridFile = serde_json::from_str(&text).map_err(|e| CodiError::Schema {
        path: path.to_path_buf(),
        sample: usize::MAX,
        reason: format!("line {} column {}: {e}", e.line(), e.column()),
    })?;
    validate(&file, path)?;
    Ok(file)
}

/// Validates and writes `file` (atomically).
pub fn write_hybrid_file(path: &Path, file: &HybridFile) -> Result<()> {
    validate(file, path)?;
    let json = serde_json::to_string_pretty(file).expect("hybrid file serialises");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| CodiError::io(dir, e))?;
    }
    latent_core::atomic::write_atomic(path, json.as_bytes())?;
    Ok(())
}
