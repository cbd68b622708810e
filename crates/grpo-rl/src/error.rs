//! Errors of the GRPO crate.

use std::path::PathBuf;

/// What can go wrong while configuring, rolling out, training, saving or evaluating.
#[derive(Debug, thiserror::Error)]
pub enum GrpoError {
    /// An error of the backbone, its files, the decoding loop or the training loop.
    #[error(transparent)]
    Core(#[from] latent_core::CoreError),
    /// An error reading a data set.
    #[error(transparent)]
    Data(#[from] latent_datasets::DataError),
    /// An error of the CODI crate (the demo's supervised warm start).
    #[error(transparent)]
    Codi(#[from] latent_codi::CodiError),
    /// A configuration value that cannot work.
    #[error("{path}: `{key}`: {reason}")]
    Config {
        /// The config file (or `<defaults>`).
        path: PathBuf,
        /// The offending key, dotted.
        key: String,
        /// Why.
        reason: String,
    },
    /// The tokenizer failed on a text.
    #[error("tokenizer {path}: {message}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No prompts to train or evaluate on.
    #[error("no prompts in {0}")]
    Empty(String),
}

impl GrpoError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config(key: &str, reason: impl Into<String>) -> Self {
        Self::Config {
            path: PathBuf::from("<config>"),
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// `Result` with [`GrpoError`].
pub type Result<T, E = GrpoError> = std::result::Result<T, E>;
