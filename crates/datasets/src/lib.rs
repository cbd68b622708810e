//! Datasets shared by every method of the workspace: typed loaders for GSM8K, GSM8k-Aug (icot and
//! Hugging Face forms, and the NL variant), iCoT multiplication, Wikipedia sentences, QQP
//! paraphrase pairs and generic JSON lines; exact answer handling; seeded synthetic tasks in the
//! same formats; deterministic batching; and Hugging Face hub parquet datasets.
//!
//! Every text loader goes through one line reader ([`reader`]): a malformed line is an error
//! `path:line: reason`, or, in lenient mode, is skipped and counted. Synthetic data is written as
//! text in the real formats and read back through the same loaders.
//!
//! ```
//! use latent_datasets::{data_dir, icot, ReadOptions};
//!
//! let loaded = icot::load(data_dir::sample("gsm8k-aug/test_sample.txt"), ReadOptions::strict())?;
//! assert_eq!(loaded.records[0].answer, "18");
//! # Ok::<(), latent_datasets::DataError>(())
//! ```
//!
//! See `docs/datasets.md` for every format with an example and the code to load it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod answer;
pub mod batch;
pub mod data_dir;
pub mod equation;
pub mod error;
pub mod gsm8k;
pub mod hub;
pub mod icot;
pub mod jsonl;
pub mod multiplication;
pub mod qqp;
pub mod reader;
pub mod rng;
pub mod sentences;
pub mod synthetic;
pub mod wiki;

pub use answer::GoldAnswer;
pub use error::{DataError, ParseError, Result};
pub use reader::{LineFormat, Loaded, ReadOptions, ReadStats, RecordStream};
