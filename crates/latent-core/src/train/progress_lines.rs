//! Progress of a run whose stderr is not a terminal (CI logs, `nohup`, a pipe), where a progress
//! bar would show nothing: one plain line on stderr at the run's first update (of this process),
//! at every twentieth of the run and at its last update — at most 22 lines however long the run —
//! each with the epoch, update/total, loss, shown terms, learning rate, throughput, elapsed time
//! and ETA. Only when the user asked for progress.

use std::time::Duration;

/// How a run shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Nothing (progress not asked for).
    Off,
    /// An indicatif bar (stderr is a terminal).
    Bar,
    /// Plain lines ([`ProgressLines`]; stderr is not a terminal).
    Lines,
}

impl ProgressMode {
    /// The mode for a run that asked for progress (`show_progress`) with stderr a terminal or not.
    pub fn choose(show_progress: bool, stderr_is_terminal: bool) -> Self {
        match (show_progress, stderr_is_terminal) {
            (false, _) => Self::Off,
            (true, true) => Self::Bar,
            (true, false) => Self::Lines,
        }
    }
}

/// Where a run stands after an update.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressState<'a> {
    /// Epoch (0-based) of the update.
    pub epoch: usize,
    /// Updates done in the whole run, this one included.
    pub done: usize,
    /// Updates done by this process (fewer than `done` after a resume), this one included.
    pub done_here: usize,
    /// The update's loss.
    pub loss: f64,
    /// Other terms to show, already formatted (` reward/mean 0.4100 kl 0.0020`).
    pub terms: &'a str,
    /// Learning rate of the first parameter group.
    pub lr: f64,
    /// Tokens per second of the update.
    pub tokens_per_s: f64,
    /// Time since this process opened the run's logs.
    pub elapsed: Duration,
}

/// Decides which updates get a line and writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressLines {
    total: usize,
    every: usize,
}

impl ProgressLines {
    /// Lines for a run of `total` updates: one every `⌈total / 20⌉` updates.
    pub fn new(total: usize) -> Self {
        Self {
            total,
            every: total.div_ceil(20).max(1),
        }
    }

    /// The line for this update, or `None` when the update gets no line: only this process's first
    /// update, every multiple of `⌈total / 20⌉` and the last update get one.
    pub fn line(&self, s: &ProgressState) -> Option<String> {
        let due = s.done_here == 1 || s.done == self.total || s.done.is_multiple_of(self.every);
        if !due {
            return None;
        }
        let per_update = s.elapsed.as_secs_f64() / s.done_here.max(1) as f64;
        let eta = per_update * self.total.saturating_sub(s.done) as f64;
        Some(format!(
            "epoch {} update {}/{} ({:.0}%) loss {:.4}{} lr {:.2e} {:.0} tok/s elapsed {} ETA {}",
            s.epoch,
            s.done,
            self.total,
            100.0 * s.done as f64 / self.total.max(1) as f64,
            s.loss,
            s.terms,
            s.lr,
            s.tokens_per_s,
            clock(s.elapsed.as_secs_f64()),
            clock(eta),
        ))
    }
}

/// Seconds as `h:mm:ss`.
fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(done: usize, done_here: usize) -> ProgressState<'static> {
        ProgressState {
            epoch: 1,
            done,
            done_here,
            loss: 2.345678,
            terms: " kl 0.0100",
            lr: 1e-4,
            tokens_per_s: 1234.4,
            elapsed: Duration::from_secs(10 * done_here as u64),
        }
    }

    #[test]
    fn a_line_has_every_field_and_the_eta() {
        let lines = ProgressLines::new(1000);
        // 50 updates in 500 s: 10 s each, 950 to go.
        assert_eq!(
            lines.line(&state(50, 50)).unwrap(),
            "epoch 1 update 50/1000 (5%) loss 2.3457 kl 0.0100 lr 1.00e-4 1234 tok/s elapsed 0:08:20 ETA 2:38:20"
        );
    }

    #[test]
    fn lines_come_at_the_start_every_twentieth_and_the_end() {
        let lines = ProgressLines::new(1000);
        let due: Vec<usize> = (1..=1000)
            .filter(|&u| lines.line(&state(u, u)).is_some())
            .collect();
        let mut expected = vec![1];
        expected.extend((1..=20).map(|k| 50 * k));
        assert_eq!(due, expected);
        // A short run: a line per update, never more.
        let short = ProgressLines::new(7);
        assert_eq!(
            (1..=7)
                .filter(|&u| short.line(&state(u, u)).is_some())
                .count(),
            7
        );
        // A resumed run prints its first update in this process, then keeps the same schedule.
        assert!(lines.line(&state(601, 1)).is_some());
        assert!(lines.line(&state(602, 2)).is_none());
        assert!(lines.line(&state(650, 50)).is_some());
    }

    #[test]
    fn lines_only_without_a_terminal_and_only_when_asked() {
        assert_eq!(ProgressMode::choose(false, false), ProgressMode::Off);
        assert_eq!(ProgressMode::choose(false, true), ProgressMode::Off);
        assert_eq!(ProgressMode::choose(true, true), ProgressMode::Bar);
        assert_eq!(ProgressMode::choose(true, false), ProgressMode::Lines);
    }
}
