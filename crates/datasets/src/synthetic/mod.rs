//! Seeded synthetic tasks written in the real files' formats, so that they go through exactly the
//! same loaders and preprocessing: multi-step arithmetic word problems in the GSM8k-Aug icot format
//! ([`arithmetic`]) and k×k multiplication in the iCoT format ([`multiplication`]).
//!
//! **Splits.** Every problem belongs to one split, decided by a stable hash (FNV-1a) of its question
//! text: `hash % 100 < test_percent` is test, the next `valid_percent` values are valid, the rest
//! train. So the splits are disjoint by question text however many examples are drawn, and each
//! split's stream is unlimited. Each split draws from its own random stream (the seed mixed with
//! the split), rejecting problems of other splits. [`generate`] also de-duplicates the held-out
//! splits; an unlimited train stream may repeat questions.
//!
//! **Randomness.** [`crate::rng::SplitMix64`], not `rand`: the same seed gives the same lines on
//! every platform and with every `rand` version.

pub mod arithmetic;
pub mod multiplication;

use std::collections::HashSet;

use crate::rng::{fnv1a64, SplitMix64};

/// Which split a synthetic stream draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// Training data.
    Train,
    /// Validation data (held out).
    Valid,
    /// Test data (held out).
    Test,
}

impl Split {
    fn stream_salt(self) -> u64 {
        match self {
            Split::Train => 0x7472_6169_6E00_0001,
            Split::Valid => 0x7661_6C69_6400_0002,
            Split::Test => 0x7465_7374_0000_0003,
        }
    }
}

/// How many percent of the problem space are held out for validation and test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldOut {
    /// Percent of question hashes that are validation problems.
    pub valid_percent: u8,
    /// Percent of question hashes that are test problems.
    pub test_percent: u8,
}

impl Default for HeldOut {
    fn default() -> Self {
        Self {
            valid_percent: 5,
            test_percent: 5,
        }
    }
}

impl HeldOut {
    /// The split a question belongs to.
    pub fn split_of(&self, question: &str) -> Split {
        let bucket = fnv1a64(question.as_bytes()) % 100;
        if bucket < u64::from(self.test_percent) {
            Split::Test
        } else if bucket < u64::from(self.test_percent) + u64::from(self.valid_percent) {
            Split::Valid
        } else {
            Split::Train
        }
    }

    pub(crate) fn check(&self) -> crate::Result<()> {
        if u16::from(self.valid_percent) + u16::from(self.test_percent) >= 100 {
            return Err(crate::DataError::Config {
                key: "held_out",
                reason: "valid_percent + test_percent must be below 100".into(),
            });
        }
        Ok(())
    }
}

/// A generator of single problems: one icot line and its question text per draw.
pub trait ProblemSource {
    /// Draws one problem as `(question, whole line)`, or `None` when this draw failed and should
    /// be retried.
    fn draw(&self, rng: &mut SplitMix64) -> Option<(String, String)>;
    /// The held-out fractions.
    fn held_out(&self) -> HeldOut;
}

/// Consecutive draws of another split (or failed draws) after which a stream gives up: the
/// problem space of the configuration is too small for this split.
pub const MAX_REJECTIONS: usize = 100_000;

/// Consecutive repeated questions after which [`generate`] stops short of `n` for a held-out split.
pub const MAX_DUPLICATES: usize = 10_000;

/// An unlimited stream of lines of one split. It ends only when [`MAX_REJECTIONS`] consecutive
/// draws fall outside the split.
pub struct Lines<'a, G: ?Sized> {
    source: &'a G,
    split: Split,
    rng: SplitMix64,
}

impl<G: ProblemSource + ?Sized> Iterator for Lines<'_, G> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let held_out = self.source.held_out();
        for _ in 0..MAX_REJECTIONS {
            if let Some((question, line)) = self.source.draw(&mut self.rng) {
                if held_out.split_of(&question) == self.split {
                    return Some(line);
                }
            }
        }
        None
    }
}

/// The unlimited line stream of `split` for `seed`.
pub fn lines<G: ProblemSource + ?Sized>(source: &G, seed: u64, split: Split) -> Lines<'_, G> {
    Lines {
        source,
        split,
        rng: SplitMix64::with_stream(seed, split.stream_salt()),
    }
}

/// `n` lines of `split` (fewer if the split's problem space runs out, see [`MAX_DUPLICATES`]);
/// valid and test lines are unique by question.
pub fn generate<G: ProblemSource + ?Sized>(
    source: &G,
    seed: u64,
    split: Split,
    n: usize,
) -> Vec<String> {
    if split == Split::Train {
        return lines(source, seed, split).take(n).collect();
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n);
    let mut stream = lines(source, seed, split);
    let mut misses = 0;
    while out.len() < n && misses < MAX_DUPLICATES {
        let Some(line) = stream.next() else { break };
        let question = line.split("||").next().unwrap_or_default().to_string();
        if seen.insert(question) {
            out.push(line);
            misses = 0;
        } else {
            misses += 1;
        }
    }
    out
}
