//! GSM8K JSON lines: `{"question": ..., "answer": "steps with <<expr=value>> annotations\n#### N"}`.

use std::path::Path;

use serde_json::Value;

use crate::answer::{GoldAnswer, ANSWER_MARKER};
use crate::equation::Equation;
use crate::error::{ParseError, Result};
use crate::jsonl::{str_field, JsonFormat, Jsonl};
use crate::reader::{LineFormat, Loaded, ReadOptions};

/// One GSM8K problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Gsm8kRecord {
    /// The question, as written.
    pub question: String,
    /// The whole `answer` field, as written.
    pub solution: String,
    /// The natural-language steps (one per non-empty line before `####`), annotations removed.
    pub steps: Vec<String>,
    /// The calculator annotations, in order.
    pub equations: Vec<Equation>,
    /// The gold answer after `####`.
    pub answer: GoldAnswer,
}

impl Gsm8kRecord {
    /// Parses a question and its `answer` field.
    pub fn parse(question: &str, solution: &str) -> Result<Self, ParseError> {
        if question.trim().is_empty() {
            return Err(ParseError::Empty("question"));
        }
        let count = solution.matches(ANSWER_MARKER).count();
        if count > 1 {
            return Err(ParseError::RepeatedSeparator {
                sep: ANSWER_MARKER,
                count,
            });
        }
        let (body, tail) = solution
            .split_once(ANSWER_MARKER)
            .ok_or(ParseError::MissingSeparator(ANSWER_MARKER))?;
        let answer = GoldAnswer::parse(tail)?;
        let mut steps = Vec::new();
        let mut equations = Vec::new();
        for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (plain, eqs) = Equation::extract_all(line)?;
            steps.push(plain);
            equations.extend(eqs);
        }
        Ok(Self {
            question: question.to_string(),
            solution: solution.to_string(),
            steps,
            equations,
            answer,
        })
    }
}

/// The GSM8K format (fields `question` and `answer`); use it through [`Jsonl`] or [`load`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Gsm8k;

impl JsonFormat for Gsm8k {
    type Record = Gsm8kRecord;

    fn parse_json(&mut self, value: &Value) -> Result<Option<Gsm8kRecord>, ParseError> {
        let question = str_field(value, "question")?;
        let solution = str_field(value, "answer")?;
        Gsm8kRecord::parse(question, solution).map(Some)
    }
}

/// Loads a GSM8K JSON-lines file (`gsm8k/test.jsonl`).
pub fn load(path: impl AsRef<Path>, options: ReadOptions) -> Result<Loaded<Gsm8kRecord>> {
    Jsonl(Gsm8k).load(path, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_line() {
        let line = r#"{"question": "Q?", "answer": "He sprints 3*3=<<3*3=9>>9 times\nSo he runs 9*60=<<9*60=540>>540 meters\n#### 540"}"#;
        let r = Jsonl(Gsm8k)
            .load_str("t", line, ReadOptions::strict())
            .unwrap()
            .records
            .remove(0);
        assert_eq!(
            r.steps,
            ["He sprints 3*3=9 times", "So he runs 9*60=540 meters"]
        );
        assert_eq!(r.equations[1].to_string(), "<<9*60=540>>");
        assert_eq!(r.answer.value, 540.0);
    }

    #[test]
    fn rejects_bad_answers() {
        assert!(Gsm8kRecord::parse("q", "no marker").is_err());
        assert!(Gsm8kRecord::parse("q", "#### 1 #### 2").is_err());
        assert!(Gsm8kRecord::parse("q", "x <<1+1>> #### 2").is_err());
        assert!(Gsm8kRecord::parse("q", "#### two").is_err());
        assert!(Gsm8kRecord::parse(" ", "#### 2").is_err());
    }
}
