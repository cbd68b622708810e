//! Stopping a run cleanly: a flag that Ctrl-C (SIGINT) sets; [`super::CheckpointPolicy::after_update`]
//! sees it after the current update, writes a checkpoint and ends training with
//! [`crate::CoreError::Interrupted`], which names the checkpoint to resume from.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::{CoreError, Result};

/// A shared "please stop" flag.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

static CTRL_C: OnceLock<StopFlag> = OnceLock::new();

impl StopFlag {
    /// A flag nobody has set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide flag set by Ctrl-C (the handler is installed on first call).
    pub fn ctrl_c() -> Result<Self> {
        if let Some(flag) = CTRL_C.get() {
            return Ok(flag.clone());
        }
        let flag = StopFlag::new();
        let handler = flag.clone();
        ctrlc::set_handler(move || handler.request()).map_err(|e| CoreError::Device {
            spec: "ctrl-c".into(),
            reason: format!("cannot install the Ctrl-C handler: {e}"),
        })?;
        Ok(CTRL_C.get_or_init(|| flag).clone())
    }

    /// Asks the run to stop after its current update.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
