//! The error type of `sgdd-diffusion`: every variant names the file, key or setting it is about.

use std::path::PathBuf;

/// Errors raised while loading encoders, reading configs and data, training or decoding.
#[derive(Debug, thiserror::Error)]
pub enum SgddError {
    /// An error from `latent-core` (I/O, safetensors, hub, tokenizer files, training loop).
    #[error(transparent)]
    Core(#[from] latent_core::CoreError),
    /// An error from `latent-datasets` (a data file, with path and line).
    #[error(transparent)]
    Data(#[from] latent_datasets::DataError),
    /// An encoder `config.json` names a model type this crate does not implement.
    #[error("{path}: unsupported encoder model_type {model_type:?} (supported: bert, roberta, xlm-roberta)")]
    UnknownEncoder {
        /// The config file.
        path: PathBuf,
        /// The value found.
        model_type: String,
    },
    /// A setting is invalid: the file (or `--set` override) and key it came from, and why.
    #[error("{source_name}: invalid {key}: {reason}")]
    InvalidConfig {
        /// The config file or `command line`.
        source_name: String,
        /// The key.
        key: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A tensor in an encoder checkpoint is missing or has the wrong shape.
    #[error("{location}: tensor {key:?}: {reason}")]
    Weights {
        /// The checkpoint file.
        location: PathBuf,
        /// The tensor key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The tokenizer failed on a text, or lacks a token the model needs.
    #[error("{path}: tokenizer: {message}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// The reason.
        message: String,
    },
    /// Inputs have inconsistent shapes or values.
    #[error("{0}")]
    Shape(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, SgddError>;

impl SgddError {
    /// An [`SgddError::InvalidConfig`].
    pub fn config(
        source: impl Into<String>,
        key: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::InvalidConfig {
            source_name: source.into(),
            key: key.into(),
            reason: reason.into(),
        }
    }
}
