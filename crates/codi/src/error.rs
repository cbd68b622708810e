//! Errors of the CODI crate.

use std::path::PathBuf;

/// What can go wrong while preparing data, building, training, saving or evaluating a CODI model.
#[derive(Debug, thiserror::Error)]
pub enum CodiError {
    /// An error of the backbone, its files or the training loop.
    #[error(transparent)]
    Core(#[from] latent_core::CoreError),
    /// An error reading a data set.
    #[error(transparent)]
    Data(#[from] latent_datasets::DataError),
    /// A record could not be read (e.g. its answer is not a number).
    #[error("record: {0}")]
    Record(#[from] latent_datasets::ParseError),
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
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// An answer text has no digit token to distil before.
    #[error("answer text {text:?} has no token containing a digit (tokens {tokens:?}); CODI distils at the token before the first answer digit")]
    NoAnswerDigit {
        /// The answer text.
        text: String,
        /// Its tokens.
        tokens: Vec<String>,
    },
    /// A file of a saved CODI model is missing or inconsistent.
    #[error("{path}: {reason}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A hybrid data file does not follow its schema (`docs/codi-hybrid.md`).
    #[error("{path}: sample {sample}: {reason}")]
    Schema {
        /// The file.
        path: PathBuf,
        /// Index of the offending sample (`usize::MAX` for the file header).
        sample: usize,
        /// What is wrong.
        reason: String,
    },
    /// No examples were left to train or evaluate on.
    #[error("no examples left in {0} after preprocessing")]
    Empty(String),
}

impl CodiError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with [`CodiError`].
pub type Result<T, E = CodiError> = std::result::Result<T, E>;
