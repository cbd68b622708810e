//! Stopping a run cleanly: a flag that Ctrl-C (SIGINT) and SIGTERM set. The training loop's
//! callback ([`crate::train::CheckpointPolicy::after_update`]) sees it after the current update, writes a
//! checkpoint and ends training with [`crate::CoreError::Interrupted`], which names the checkpoint
//! to resume from; long work inside an update (rollouts, evaluations) checks it between decoding
//! steps or batches ([`StopFlag::check`]). A second signal exits the process at once (status 130).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::{CoreError, Result};

/// A shared "please stop" flag.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

/// Flags are equal when they are the same flag (clones of one another).
impl PartialEq for StopFlag {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

static CTRL_C: OnceLock<StopFlag> = OnceLock::new();

/// Exit status of a process ended by a second Ctrl-C / SIGTERM (128 + SIGINT, as shells report an
/// interrupted command).
pub const SECOND_SIGNAL_EXIT_CODE: i32 = 130;

/// What to do on a Ctrl-C / SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalAction {
    /// The first signal: the flag is set; the run checkpoints and stops at its next check.
    Stop,
    /// A later signal: the user does not want to wait; exit now.
    ExitNow,
}

/// Counts the termination signals a process receives and decides what each means.
#[derive(Debug, Default)]
pub struct SignalHandler {
    flag: StopFlag,
    received: AtomicUsize,
}

impl SignalHandler {
    /// A handler that sets `flag` on the first signal.
    pub fn new(flag: StopFlag) -> Self {
        Self {
            flag,
            received: AtomicUsize::new(0),
        }
    }

    /// Records one signal: the first requests a stop, any later one asks to exit at once.
    pub fn on_signal(&self) -> SignalAction {
        if self.received.fetch_add(1, Ordering::SeqCst) == 0 {
            self.flag.request();
            SignalAction::Stop
        } else {
            SignalAction::ExitNow
        }
    }
}

impl StopFlag {
    /// A flag nobody has set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide flag set by Ctrl-C (SIGINT), SIGTERM and SIGHUP; the handler is installed
    /// on first call. A second signal ends the process at once with
    /// [`SECOND_SIGNAL_EXIT_CODE`], after one line on stderr.
    pub fn ctrl_c() -> Result<Self> {
        if let Some(flag) = CTRL_C.get() {
            return Ok(flag.clone());
        }
        let flag = StopFlag::new();
        let handler = SignalHandler::new(flag.clone());
        ctrlc::set_handler(move || {
            if handler.on_signal() == SignalAction::ExitNow {
                // The user's second interrupt: they asked not to wait for the checkpoint.
                eprintln!("second interrupt: exiting now without waiting for the checkpoint");
                std::process::exit(SECOND_SIGNAL_EXIT_CODE);
            }
        })
        .map_err(|e| CoreError::Device {
            spec: "ctrl-c".into(),
            reason: format!("cannot install the Ctrl-C / SIGTERM handler: {e}"),
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

    /// `Err(CoreError::StopRequested)` naming `during` when a stop was asked for: what long work
    /// (a rollout, an evaluation) calls between its steps so that the stop is honoured within one
    /// of them.
    pub fn check(&self, during: &str) -> Result<()> {
        if self.is_requested() {
            return Err(CoreError::StopRequested {
                during: during.to_string(),
            });
        }
        Ok(())
    }
}

/// [`StopFlag::check`] on an optional flag (no flag: never stops).
pub fn check_stop(stop: Option<&StopFlag>, during: &str) -> Result<()> {
    stop.map_or(Ok(()), |flag| flag.check(during))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_signal_requests_a_stop_and_the_second_exits() {
        let flag = StopFlag::new();
        let handler = SignalHandler::new(flag.clone());
        assert!(!flag.is_requested());
        assert_eq!(handler.on_signal(), SignalAction::Stop);
        assert!(flag.is_requested());
        assert_eq!(handler.on_signal(), SignalAction::ExitNow);
        assert_eq!(handler.on_signal(), SignalAction::ExitNow);
    }

    #[test]
    fn a_stop_requested_in_code_does_not_make_the_first_signal_exit() {
        let flag = StopFlag::new();
        flag.request();
        let handler = SignalHandler::new(flag.clone());
        assert_eq!(handler.on_signal(), SignalAction::Stop);
    }

    #[test]
    fn check_names_what_was_stopped() {
        let flag = StopFlag::new();
        assert!(flag.check("rollout").is_ok());
        assert!(check_stop(None, "rollout").is_ok());
        flag.request();
        let err = check_stop(Some(&flag), "rollout").unwrap_err();
        assert!(
            matches!(&err, CoreError::StopRequested { during } if during == "rollout"),
            "{err}"
        );
        assert_eq!(flag.clone(), flag);
        assert_ne!(flag, StopFlag::new());
    }
}
