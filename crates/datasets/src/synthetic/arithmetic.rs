//! Multi-step arithmetic word problems in the GSM8k-Aug icot format:
//! `Mia has 12 marbles. She buys 5 more. ... How many marbles does Mia have now?||<<12+5=17>>
//! <<17*3=51>> #### 51`. Each step applies one operator to the previous step's result, so every
//! result is used by the next step. All values are non-negative integers: subtraction never goes
//! below zero and division is always exact.

use crate::error::{DataError, Result};
use crate::icot::{Icot, IcotRecord};
use crate::reader::{LineFormat, Loaded, ReadOptions};
use crate::rng::SplitMix64;
use crate::synthetic::{generate, lines, HeldOut, Lines, ProblemSource, Split};

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `+`
    Add,
    /// `-` (result never negative)
    Sub,
    /// `*`
    Mul,
    /// `/` (always exact)
    Div,
}

impl Op {
    /// The operator's symbol in equations.
    pub fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Sub => '-',
            Op::Mul => '*',
            Op::Div => '/',
        }
    }
}

/// Generator settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArithmeticConfig {
    /// Equations per problem (at least 1).
    pub steps: usize,
    /// Smallest operand (inclusive); the starting quantity is drawn from the same range.
    pub operand_min: u64,
    /// Largest operand (inclusive).
    pub operand_max: u64,
    /// Operators to draw from (not empty).
    pub operators: Vec<Op>,
    /// Largest intermediate result allowed.
    pub max_value: u64,
    /// Held-out fractions.
    pub held_out: HeldOut,
}

impl Default for ArithmeticConfig {
    fn default() -> Self {
        Self {
            steps: 3,
            operand_min: 2,
            operand_max: 20,
            operators: vec![Op::Add, Op::Sub, Op::Mul, Op::Div],
            max_value: 10_000,
            held_out: HeldOut::default(),
        }
    }
}

const PEOPLE: [(&str, &str); 12] = [
    ("Mia", "She"),
    ("Liam", "He"),
    ("Ava", "She"),
    ("Noah", "He"),
    ("Zoe", "She"),
    ("Omar", "He"),
    ("Lena", "She"),
    ("Ravi", "He"),
    ("Sofia", "She"),
    ("Kenji", "He"),
    ("Ines", "She"),
    ("Tom", "He"),
];

const ITEMS: [&str; 12] = [
    "apples", "marbles", "stickers", "books", "pencils", "coins", "cookies", "shells", "cards",
    "stamps", "balloons", "seeds",
];

/// The arithmetic word-problem generator.
#[derive(Debug, Clone)]
pub struct ArithmeticGenerator {
    config: ArithmeticConfig,
    seed: u64,
}

impl ArithmeticGenerator {
    /// Checks the configuration.
    pub fn new(config: ArithmeticConfig, seed: u64) -> Result<Self> {
        let bad = |key, reason: &str| {
            Err(DataError::Config {
                key,
                reason: reason.into(),
            })
        };
        if config.steps == 0 {
            return bad("steps", "must be at least 1");
        }
        if config.operand_min > config.operand_max {
            return bad("operand_min", "must not exceed operand_max");
        }
        if config.operators.is_empty() {
            return bad("operators", "must not be empty");
        }
        if config.operand_max > config.max_value {
            return bad("max_value", "must be at least operand_max");
        }
        config.held_out.check()?;
        Ok(Self { config, seed })
    }

    /// The configuration.
    pub fn config(&self) -> &ArithmeticConfig {
        &self.config
    }

    /// The unlimited stream of icot lines of `split`.
    pub fn lines(&self, split: Split) -> Lines<'_, Self> {
        lines(self, self.seed, split)
    }

    /// `n` icot lines of `split` (held-out splits unique by question).
    pub fn generate(&self, split: Split, n: usize) -> Vec<String> {
        generate(self, self.seed, split, n)
    }

    /// `n` examples of `split`, read back through the GSM8k-Aug loader ([`Icot`]) like a real file.
    pub fn load(&self, split: Split, n: usize) -> Result<Loaded<IcotRecord>> {
        let text = self.generate(split, n).join("\n");
        let name = format!("synthetic:arithmetic(seed={},{split:?})", self.seed);
        Icot::default().load_str(name, &text, ReadOptions::strict())
    }

    /// One step: an operand for `op` applied to `x`, if one exists in range.
    fn operand(&self, rng: &mut SplitMix64, op: Op, x: u64) -> Option<u64> {
        let c = &self.config;
        let (lo, hi) = (c.operand_min, c.operand_max);
        match op {
            Op::Add => {
                let hi = hi.min(c.max_value.checked_sub(x)?);
                (lo <= hi).then(|| rng.range_inclusive(lo, hi))
            }
            Op::Sub => {
                let hi = hi.min(x);
                (lo <= hi).then(|| rng.range_inclusive(lo, hi))
            }
            Op::Mul => {
                let hi = c.max_value.checked_div(x).map_or(hi, |m| hi.min(m));
                (lo <= hi).then(|| rng.range_inclusive(lo, hi))
            }
            Op::Div => {
                let lo = lo.max(1);
                let hi = hi.min(x.max(1));
                // Divisors of x in lo..=hi (x is at most max_value; the range is small).
                let divisors: Vec<u64> = (lo..=hi)
                    .filter(|&d| x.is_multiple_of(d))
                    .take(256)
                    .collect();
                rng.choose(&divisors).copied()
            }
        }
    }
}

fn apply(op: Op, x: u64, n: u64) -> u64 {
    match op {
        Op::Add => x + n,
        Op::Sub => x - n,
        Op::Mul => x * n,
        Op::Div => x / n,
    }
}

fn sentence(rng: &mut SplitMix64, op: Op, pronoun: &str, n: u64, items: &str) -> String {
    let forms: [String; 2] = match op {
        Op::Add => [
            format!("{pronoun} buys {n} more {items}."),
            format!("{pronoun} is given {n} more {items}."),
        ],
        Op::Sub => [
            format!("{pronoun} gives {n} {items} to a friend."),
            format!("{pronoun} loses {n} {items}."),
        ],
        Op::Mul => [
            format!(
                "{pronoun} then gets {n} times as many {items} as {} had.",
                pronoun.to_lowercase()
            ),
            format!("Each of the {items} is swapped for {n} new ones."),
        ],
        Op::Div => [
            format!("{pronoun} splits the {items} equally into {n} boxes and keeps one box."),
            format!("{pronoun} shares the {items} equally among {n} people, keeping one share."),
        ],
    };
    forms[rng.below(2) as usize].clone()
}

impl ProblemSource for ArithmeticGenerator {
    fn draw(&self, rng: &mut SplitMix64) -> Option<(String, String)> {
        let c = &self.config;
        let &(name, pronoun) = rng.choose(&PEOPLE)?;
        let items = *rng.choose(&ITEMS)?;
        let mut x = rng.range_inclusive(c.operand_min, c.operand_max);
        let mut question = format!("{name} has {x} {items}.");
        let mut equations = Vec::with_capacity(c.steps);
        for _ in 0..c.steps {
            let op = *rng.choose(&c.operators)?;
            let n = self.operand(rng, op, x)?;
            let y = apply(op, x, n);
            equations.push(format!("<<{x}{}{n}={y}>>", op.symbol()));
            question.push(' ');
            question.push_str(&sentence(rng, op, pronoun, n, items));
            x = y;
        }
        question.push_str(&format!(" How many {items} does {name} have now?"));
        let line = format!("{question}||{} #### {x}", equations.join(" "));
        Some((question, line))
    }

    fn held_out(&self) -> HeldOut {
        self.config.held_out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chained_and_correct() {
        let g = ArithmeticGenerator::new(ArithmeticConfig::default(), 3).unwrap();
        let loaded = g.load(Split::Train, 200).unwrap();
        assert_eq!(loaded.records.len(), 200);
        for r in &loaded.records {
            let eqs = r.equations().unwrap();
            assert_eq!(eqs.len(), 3);
            for w in eqs.windows(2) {
                assert!(w[1].expr.starts_with(&w[0].value), "{}", r.to_line());
            }
            assert_eq!(eqs.last().unwrap().value, r.answer);
        }
    }

    #[test]
    fn bad_config() {
        let c = ArithmeticConfig {
            steps: 0,
            ..ArithmeticConfig::default()
        };
        assert!(ArithmeticGenerator::new(c, 0).is_err());
    }
}
