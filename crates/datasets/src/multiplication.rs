//! iCoT multiplication lines: `7 6 9 2 * 1 6 3 6||<partial products> #### 7 8 0 3 7 8 8 1`, every
//! number written digit by digit, least-significant digit first, digits separated by spaces.
//!
//! The CoT lists the partial products `a × b_i × 10^i`, each zero-padded to `len(a) + 1 + i`
//! digits, joined by `+`, with the running sum in parentheses (same width) after each addition but
//! the last; the answer is zero-padded to `len(a) + len(b)` digits. [`cot_for`] writes exactly this
//! (it reproduces every line of the published 4×4 files).

use std::path::Path;

use crate::answer::ANSWER_MARKER;
use crate::error::{ParseError, Result};
use crate::icot::{split_once_exactly, QUESTION_SEPARATOR};
use crate::reader::{LineFormat, Loaded, ReadOptions};

/// Digits, least-significant first.
pub type Digits = Vec<u8>;

/// One multiplication example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultRecord {
    /// First factor, least-significant digit first.
    pub a: Digits,
    /// Second factor, least-significant digit first.
    pub b: Digits,
    /// The CoT as written (trimmed).
    pub cot: String,
    /// The CoT tokens (digits, `+`, `(`, `)`).
    pub cot_tokens: Vec<String>,
    /// The product as written, least-significant digit first.
    pub answer: Digits,
}

fn parse_digits(text: &str, what: &'static str) -> Result<Digits, ParseError> {
    let digits: Digits = text
        .split_whitespace()
        .map(|t| match t.as_bytes() {
            [d @ b'0'..=b'9'] => Ok(d - b'0'),
            _ => Err(ParseError::BadNumber(format!("{t:?} in {what}"))),
        })
        .collect::<Result<_, _>>()?;
    if digits.is_empty() {
        return Err(ParseError::Empty(what));
    }
    Ok(digits)
}

/// Writes digits separated by spaces.
pub fn digits_to_string(digits: &[u8]) -> String {
    digits
        .iter()
        .map(|d| char::from(b'0' + d).to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `digits` padded with zeros to `width` (never cut).
fn padded(digits: &[u8], width: usize) -> Digits {
    let mut v = digits.to_vec();
    if v.len() < width {
        v.resize(width, 0);
    }
    v
}

/// Removes most-significant zeros (keeps one digit).
fn trimmed(mut v: Digits) -> Digits {
    while v.len() > 1 && v.last() == Some(&0) {
        v.pop();
    }
    v
}

/// `a × d × 10^shift`, least-significant first.
pub fn mul_digit(a: &[u8], d: u8, shift: usize) -> Digits {
    let mut out = vec![0; shift];
    let mut carry = 0u32;
    for &x in a {
        let p = u32::from(x) * u32::from(d) + carry;
        out.push((p % 10) as u8);
        carry = p / 10;
    }
    while carry > 0 {
        out.push((carry % 10) as u8);
        carry /= 10;
    }
    trimmed(out)
}

/// `a + b`, least-significant first.
pub fn add(a: &[u8], b: &[u8]) -> Digits {
    let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
    let mut carry = 0u8;
    for i in 0..a.len().max(b.len()) {
        let s = a.get(i).copied().unwrap_or(0) + b.get(i).copied().unwrap_or(0) + carry;
        out.push(s % 10);
        carry = s / 10;
    }
    if carry > 0 {
        out.push(carry);
    }
    trimmed(out)
}

/// `a × b`, least-significant first (any length).
pub fn multiply(a: &[u8], b: &[u8]) -> Digits {
    b.iter()
        .enumerate()
        .fold(vec![0], |acc, (i, &d)| add(&acc, &mul_digit(a, d, i)))
}

/// The CoT the iCoT files write for `a × b` (see the module documentation).
pub fn cot_for(a: &[u8], b: &[u8]) -> String {
    let k = a.len();
    let mut parts = Vec::new();
    let mut sum: Digits = vec![0];
    for (i, &d) in b.iter().enumerate() {
        let width = k + 1 + i;
        let partial = mul_digit(a, d, i);
        sum = add(&sum, &partial);
        if i == 0 {
            parts.push(digits_to_string(&padded(&partial, width)));
        } else {
            parts.push(format!("+ {}", digits_to_string(&padded(&partial, width))));
            if i + 1 < b.len() {
                parts.push(format!("( {} )", digits_to_string(&padded(&sum, width))));
            }
        }
    }
    parts.join(" ")
}

/// The whole line for `a × b`, as the iCoT files write it.
pub fn line_for(a: &[u8], b: &[u8]) -> String {
    let answer = padded(&multiply(a, b), a.len() + b.len());
    format!(
        "{} * {}{QUESTION_SEPARATOR}{} {ANSWER_MARKER} {}",
        digits_to_string(a),
        digits_to_string(b),
        cot_for(a, b),
        digits_to_string(&answer)
    )
}

impl MultRecord {
    /// Parses one line.
    pub fn parse_line(line: &str) -> Result<Self, ParseError> {
        let (question, rest) = split_once_exactly(line, QUESTION_SEPARATOR)?;
        let (a, b) = split_once_exactly(question, "*")?;
        let (cot, answer) = split_once_exactly(rest, ANSWER_MARKER)?;
        let cot = cot.trim();
        let cot_tokens = cot
            .split_whitespace()
            .map(|t| match t {
                "+" | "(" | ")" => Ok(t.to_string()),
                _ if t.len() == 1 && t.as_bytes()[0].is_ascii_digit() => Ok(t.to_string()),
                _ => Err(ParseError::BadNumber(format!("{t:?} in CoT"))),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            a: parse_digits(a, "first factor")?,
            b: parse_digits(b, "second factor")?,
            cot: cot.to_string(),
            cot_tokens,
            answer: parse_digits(answer, "answer")?,
        })
    }

    /// Whether the written answer equals `a × b`.
    pub fn answer_is_correct(&self) -> bool {
        trimmed(self.answer.clone()) == multiply(&self.a, &self.b)
    }

    /// Whether the CoT is the one [`cot_for`] writes.
    pub fn cot_is_canonical(&self) -> bool {
        self.cot == cot_for(&self.a, &self.b)
    }

    /// The question part, `7 6 9 2 * 1 6 3 6`.
    pub fn question(&self) -> String {
        format!(
            "{} * {}",
            digits_to_string(&self.a),
            digits_to_string(&self.b)
        )
    }

    /// The answer as written, `7 8 0 3 7 8 8 1`.
    pub fn answer_text(&self) -> String {
        digits_to_string(&self.answer)
    }

    /// Writes the record back as a line.
    pub fn to_line(&self) -> String {
        format!(
            "{}{QUESTION_SEPARATOR}{} {ANSWER_MARKER} {}",
            self.question(),
            self.cot,
            self.answer_text()
        )
    }
}

/// Reads a digit string least-significant first as a number (`None` past `u128`).
pub fn digits_value(digits: &[u8]) -> Option<u128> {
    digits.iter().rev().try_fold(0u128, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u128::from(d))
    })
}

/// The multiplication line format.
#[derive(Debug, Clone, Copy, Default)]
pub struct Multiplication;

impl LineFormat for Multiplication {
    type Record = MultRecord;

    fn parse_line(
        &mut self,
        _line_no: usize,
        line: &str,
    ) -> Result<Option<MultRecord>, ParseError> {
        MultRecord::parse_line(line).map(Some)
    }
}

/// Loads a multiplication file (`mult-4x4/test.txt`).
pub fn load(path: impl AsRef<Path>, options: ReadOptions) -> Result<Loaded<MultRecord>> {
    Multiplication.load(path, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "7 6 9 2 * 1 6 3 6||7 6 9 2 0 + 0 2 0 8 7 1 ( 7 8 9 0 8 1 ) + 0 0 1 0 9 8 0 ( 7 8 0 1 7 0 1 ) + 0 0 0 2 0 8 7 1 #### 7 8 0 3 7 8 8 1";

    #[test]
    fn real_line_round_trip() {
        let r = MultRecord::parse_line(LINE).unwrap();
        assert_eq!(digits_value(&r.a), Some(2967));
        assert_eq!(digits_value(&r.b), Some(6361));
        assert_eq!(digits_value(&r.answer), Some(2967 * 6361));
        assert!(r.answer_is_correct());
        assert!(r.cot_is_canonical());
        assert_eq!(r.to_line(), LINE);
        assert_eq!(line_for(&r.a, &r.b), LINE);
    }

    #[test]
    fn malformed() {
        assert!(MultRecord::parse_line("1 2 * 3 4||5 #### 1 2").is_ok());
        assert!(MultRecord::parse_line("1 2 * 3 4||x #### 1").is_err());
        assert!(MultRecord::parse_line("12 * 3||1 #### 1").is_err());
        assert!(MultRecord::parse_line("1 2 3 4||1 #### 1").is_err());
        assert!(MultRecord::parse_line("1 * 3||1 ####").is_err());
    }
}
