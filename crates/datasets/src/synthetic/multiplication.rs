//! k×k digit multiplication in the iCoT format (digits least-significant first, partial products
//! and running sums as in the published 4×4 files; see [`crate::multiplication`]). Factors have
//! exactly the configured number of digits (most-significant digit not zero), as in those files.

use crate::error::{DataError, Result};
use crate::multiplication::{digits_to_string, line_for, MultRecord, Multiplication};
use crate::reader::{LineFormat, Loaded, ReadOptions};
use crate::rng::SplitMix64;
use crate::synthetic::{generate, lines, HeldOut, Lines, ProblemSource, Split};

/// Generator settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultiplicationConfig {
    /// Digits of the first factor.
    pub digits_a: usize,
    /// Digits of the second factor.
    pub digits_b: usize,
    /// Held-out fractions.
    pub held_out: HeldOut,
}

impl MultiplicationConfig {
    /// k×k multiplication.
    pub fn square(k: usize) -> Self {
        Self {
            digits_a: k,
            digits_b: k,
            held_out: HeldOut::default(),
        }
    }
}

/// The multiplication generator.
#[derive(Debug, Clone)]
pub struct MultiplicationGenerator {
    config: MultiplicationConfig,
    seed: u64,
}

impl MultiplicationGenerator {
    /// Checks the configuration (1 to 64 digits per factor).
    pub fn new(config: MultiplicationConfig, seed: u64) -> Result<Self> {
        for (key, k) in [("digits_a", config.digits_a), ("digits_b", config.digits_b)] {
            if !(1..=64).contains(&k) {
                return Err(DataError::Config {
                    key,
                    reason: format!("{k} digits; must be 1 to 64"),
                });
            }
        }
        config.held_out.check()?;
        Ok(Self { config, seed })
    }

    /// The unlimited stream of lines of `split`.
    pub fn lines(&self, split: Split) -> Lines<'_, Self> {
        lines(self, self.seed, split)
    }

    /// `n` lines of `split` (held-out splits unique by question).
    pub fn generate(&self, split: Split, n: usize) -> Vec<String> {
        generate(self, self.seed, split, n)
    }

    /// `n` examples of `split`, read back through the multiplication loader like a real file.
    pub fn load(&self, split: Split, n: usize) -> Result<Loaded<MultRecord>> {
        let text = self.generate(split, n).join("\n");
        let name = format!("synthetic:multiplication(seed={},{split:?})", self.seed);
        Multiplication.load_str(name, &text, ReadOptions::strict())
    }
}

fn factor(rng: &mut SplitMix64, k: usize) -> Vec<u8> {
    let mut digits: Vec<u8> = (0..k).map(|_| rng.below(10) as u8).collect();
    digits[k - 1] = 1 + rng.below(9) as u8;
    digits
}

impl ProblemSource for MultiplicationGenerator {
    fn draw(&self, rng: &mut SplitMix64) -> Option<(String, String)> {
        let a = factor(rng, self.config.digits_a);
        let b = factor(rng, self.config.digits_b);
        let question = format!("{} * {}", digits_to_string(&a), digits_to_string(&b));
        Some((question, line_for(&a, &b)))
    }

    fn held_out(&self) -> HeldOut {
        self.config.held_out
    }
}
