//! Datasets shared by every method: GSM8K, GSM8k-Aug, multiplication, Wikipedia, QQP, synthetic tasks; answer extraction; batching.
//!
//! **Status:** not implemented yet. It will hold typed loaders with `path:line` errors, answer extraction, seeded synthetic generators and deterministic batching.
//!
//! See `docs/architecture.md` for how this crate fits into the workspace.
#![forbid(unsafe_code)]
