//! Errors of the latent reward model crate.

use std::path::PathBuf;

/// What can go wrong while collecting paths, training the scorer or evaluating it.
#[derive(Debug, thiserror::Error)]
pub enum PrmError {
    /// An error of the backbone, its files or the training loop.
    #[error(transparent)]
    Core(#[from] latent_core::CoreError),
    /// An error of the CODI reasoner (loading, decoding, its data).
    #[error(transparent)]
    Codi(#[from] latent_codi::CodiError),
    /// A configuration value that cannot work.
    #[error("{path}: `{key}`: {reason}")]
    Config {
        /// The config file (or `<config>`).
        path: PathBuf,
        /// The offending key, dotted.
        key: String,
        /// Why.
        reason: String,
    },
    /// A collection directory without paths.
    #[error(
        "no collected latent paths in {dir} (no metadata.json or no shards): collect them with \
         `cargo run --release --example prm_collect -- --reasoner <CODI checkpoint> --questions <file> --out {dir}`"
    )]
    NoData {
        /// The directory searched.
        dir: PathBuf,
    },
    /// A shard or metadata file that does not hold what its format says.
    #[error("{path}: {reason}")]
    Format {
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
}

impl PrmError {
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

    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// `Result` with [`PrmError`].
pub type Result<T, E = PrmError> = std::result::Result<T, E>;
