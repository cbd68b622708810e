//! The error type of `latent-core`: every variant names the file, key or tensor it is about.

use std::path::PathBuf;

/// Errors raised while reading configs, weights, tokenizers or devices.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A plot could not be drawn or written (no finite points, or the bitmap backend failed).
    #[error("{path}: plot: {message}")]
    Plot {
        /// The PNG file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A JSON file is malformed or lacks a field.
    #[error("{path}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What serde reported (it names the missing or bad field, with line and column).
        message: String,
    },
    /// `config.json` names a `model_type` this workspace does not implement.
    #[error(
        "{path}: unsupported model_type {model_type:?} (supported: llama, qwen2, qwen3, gpt2)"
    )]
    UnknownModelType {
        /// The config file.
        path: PathBuf,
        /// The value found.
        model_type: String,
    },
    /// `config.json` asks for a feature this workspace does not implement.
    #[error("{path}: unsupported setting {key} = {value}")]
    Unsupported {
        /// The config file.
        path: PathBuf,
        /// The key.
        key: String,
        /// Its value.
        value: String,
    },
    /// A config value is inconsistent (e.g. heads do not divide the width).
    #[error("{path}: invalid {key}: {reason}")]
    InvalidConfig {
        /// The config file.
        path: PathBuf,
        /// The key.
        key: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A safetensors file is malformed.
    #[error("{path}: {message}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The reason.
        message: String,
    },
    /// The checkpoint lacks a tensor the model needs.
    #[error("{location}: missing tensor {key:?} (needed for parameter {param})")]
    MissingTensor {
        /// The checkpoint directory or file.
        location: PathBuf,
        /// The Hugging Face key looked for.
        key: String,
        /// The model parameter path.
        param: String,
    },
    /// A tensor in the checkpoint has the wrong shape or dtype.
    #[error("{location}: tensor {key:?}: expected {expected}, found {found}")]
    TensorMismatch {
        /// The checkpoint file.
        location: PathBuf,
        /// The Hugging Face key.
        key: String,
        /// What the model expects.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// A model or file is neither local nor in the Hugging Face cache, and the hub cannot be asked.
    #[error("{repo}: file {file:?} is not in the local Hugging Face cache and {reason}")]
    NotCached {
        /// The hub repository id.
        repo: String,
        /// The file within it.
        file: String,
        /// Why the hub was not asked (offline mode) or what it answered.
        reason: String,
    },
    /// A tokenizer could not be loaded or applied.
    #[error("{path}: tokenizer: {message}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// The reason.
        message: String,
    },
    /// A `--device` string could not be understood, or the device is not compiled in.
    #[error("device {spec:?}: {reason}")]
    Device {
        /// The string given.
        spec: String,
        /// The reason.
        reason: String,
    },
    /// A loss or gradient became NaN or infinite during training.
    #[error("training stopped: {0}")]
    NonFinite(String),
    /// A LoRA configuration built in code is invalid or selects nothing.
    #[error("LoRA config: {key}: {reason}")]
    Lora {
        /// The setting.
        key: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A stop was requested (Ctrl-C, SIGTERM) during work that ends early without a checkpoint of
    /// its own (a rollout, an evaluation); the training driver checkpoints what it can and turns
    /// this into [`CoreError::Interrupted`].
    #[error("stopped on request during {during}")]
    StopRequested {
        /// What was running.
        during: String,
    },
    /// A checkpoint does not belong to the run resuming from it (its schedule, or the parameters
    /// it holds, differ from the run's).
    #[error("{path}: {key} is {checkpoint} in the checkpoint but {run} in this run; resume with the settings the checkpoint was written with")]
    ResumeMismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// The setting or tensor.
        key: String,
        /// Its value in the checkpoint.
        checkpoint: String,
        /// Its value in this run.
        run: String,
    },
    /// Training was stopped on request (Ctrl-C, SIGTERM) after saving a checkpoint.
    #[error("interrupted after update {step}; checkpoint saved in {checkpoint} (resume from it)")]
    Interrupted {
        /// Updates done.
        step: usize,
        /// The checkpoint written before stopping.
        checkpoint: PathBuf,
    },
    /// A job's command line does not fit the job (see [`crate::cli`]).
    #[error(transparent)]
    Cli(#[from] crate::cli::CliError),
    /// Inputs to `forward` have inconsistent shapes.
    #[error("forward: {0}")]
    Shape(String),
    /// An input value to `forward` is outside what the model accepts (a token id past the
    /// vocabulary, a position past a learned position table, an empty batch).
    #[error("forward: {what} {value} (batch row {row}, position {position}): {reason}")]
    InvalidInput {
        /// What the value is (`token id`, `position`, ...).
        what: &'static str,
        /// The first offending value.
        value: i64,
        /// Its batch row.
        row: usize,
        /// Its position in the input.
        position: usize,
        /// The accepted range.
        reason: String,
    },
    /// Data-parallel training failed on a replica: a collective operation (burn-collective)
    /// failed, a micro-batch could not be sharded, or another replica stopped the run.
    #[error("data parallel: peer {peer} on {device}: {reason}")]
    DataParallel {
        /// The replica's peer id (its rank among all replicas).
        peer: usize,
        /// Its device.
        device: String,
        /// What happened.
        reason: String,
    },
    /// A method crate's own error raised inside the training loop (e.g. from a `TrainStep`).
    #[error("{0}")]
    Method(Box<dyn std::error::Error + Send + Sync>),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, CoreError>;

impl CoreError {
    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps a serde_json error with its path.
    pub fn json(path: impl Into<PathBuf>, err: &serde_json::Error) -> Self {
        Self::Json {
            path: path.into(),
            message: err.to_string(),
        }
    }
}
