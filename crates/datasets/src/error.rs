//! Error types: [`ParseError`] says what is wrong with one line or record, [`DataError`] adds where
//! (`path:line`, a hub repository and file, a tokenizer).

use std::path::PathBuf;

/// What is wrong with one line or record, without saying where it came from.
///
/// Loaders wrap it into [`DataError::Line`] with the file and line number.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// A required separator (for example `||` or `####`) is missing.
    #[error("missing separator `{0}`")]
    MissingSeparator(&'static str),
    /// A separator that must occur once occurs several times.
    #[error("separator `{sep}` occurs {count} times, expected once")]
    RepeatedSeparator {
        /// The separator.
        sep: &'static str,
        /// How often it occurs.
        count: usize,
    },
    /// A required part of the line is empty.
    #[error("empty {0}")]
    Empty(&'static str),
    /// The line is not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// A JSON object lacks a field (or the JSON value is not an object).
    #[error("missing field `{0}`")]
    MissingField(String),
    /// A field has the wrong JSON type.
    #[error("field `{field}` is not {expected}")]
    FieldType {
        /// The field name or JSON pointer.
        field: String,
        /// What was expected, e.g. "a string".
        expected: &'static str,
    },
    /// A number (answer, digit, id) could not be read.
    #[error("bad number {0:?}")]
    BadNumber(String),
    /// A calculator annotation `<<expr=value>>` is malformed.
    #[error("bad equation {0:?}")]
    BadEquation(String),
    /// A table row has the wrong number of columns.
    #[error("expected {expected} tab-separated columns, found {found}")]
    Columns {
        /// Columns required.
        expected: usize,
        /// Columns present.
        found: usize,
    },
    /// Any other reason.
    #[error("{0}")]
    Other(String),
}

/// Every error of this crate. Messages name the file and line (`path:line: reason`) or the key.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Opening or reading a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// One line (or parquet row) of a file is malformed.
    #[error("{}:{line}: {source}", path.display())]
    Line {
        /// The file (or a name such as `synthetic:arithmetic`).
        path: PathBuf,
        /// 1-based line (or row) number.
        line: usize,
        /// What is wrong.
        #[source]
        source: ParseError,
    },
    /// A hub file could not be read (offline and not cached, network error, bad repository).
    #[error("hub dataset {repo}, file {file}: {reason}")]
    Hub {
        /// Repository id, e.g. `openai/gsm8k`.
        repo: String,
        /// File inside the repository (or the config/split asked for).
        file: String,
        /// What went wrong.
        reason: String,
    },
    /// A parquet file could not be decoded.
    #[error("{}: parquet: {reason}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        reason: String,
    },
    /// The tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// An invalid configuration value (generator, batcher, split).
    #[error("invalid configuration `{key}`: {reason}")]
    Config {
        /// The option.
        key: &'static str,
        /// Why it is invalid.
        reason: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
