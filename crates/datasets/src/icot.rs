//! GSM8k-Aug in the "icot" line format `question||<<eq>> <<eq>> #### answer`, its Hugging Face form
//! (JSON fields `question`, `cot`, `answer`) and the natural-language variant (GSM8k-Aug-NL, whose
//! CoT is split into steps on `". "`).

use std::path::Path;

use serde_json::Value;

use crate::answer::{GoldAnswer, ANSWER_MARKER};
use crate::equation::Equation;
use crate::error::{ParseError, Result};
use crate::jsonl::{str_field, JsonFormat};
use crate::reader::{LineFormat, Loaded, ReadOptions};

/// The separator between question and CoT.
pub const QUESTION_SEPARATOR: &str = "||";

/// How the CoT is split into steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CotStyle {
    /// GSM8k-Aug: steps are `<<expr=value>>` annotations separated by whitespace; each is checked.
    #[default]
    Equations,
    /// GSM8k-Aug-NL ("icot-full"): steps are sentences separated by `". "`.
    Sentences,
}

impl CotStyle {
    /// Splits a CoT into steps (empty pieces dropped).
    pub fn split(self, cot: &str) -> Result<Vec<String>, ParseError> {
        match self {
            CotStyle::Equations => cot
                .split_whitespace()
                .map(|s| Equation::parse(s).map(|_| s.to_string()))
                .collect(),
            CotStyle::Sentences => Ok(cot
                .split(". ")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()),
        }
    }
}

/// One GSM8k-Aug example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcotRecord {
    /// The question.
    pub question: String,
    /// The CoT as written (trimmed).
    pub cot: String,
    /// The CoT steps (see [`CotStyle`]).
    pub steps: Vec<String>,
    /// The answer after `####`, trimmed, as written.
    pub answer: String,
}

impl IcotRecord {
    /// Builds a record from its three parts.
    pub fn from_parts(
        question: &str,
        cot: &str,
        answer: &str,
        style: CotStyle,
    ) -> Result<Self, ParseError> {
        let question = question.trim();
        if question.is_empty() {
            return Err(ParseError::Empty("question"));
        }
        let answer = answer.trim();
        if answer.is_empty() {
            return Err(ParseError::Empty("answer"));
        }
        let cot = cot.trim();
        Ok(Self {
            question: question.to_string(),
            cot: cot.to_string(),
            steps: style.split(cot)?,
            answer: answer.to_string(),
        })
    }

    /// Parses `question||cot #### answer`.
    pub fn parse_line(line: &str, style: CotStyle) -> Result<Self, ParseError> {
        let (question, rest) = split_once_exactly(line, QUESTION_SEPARATOR)?;
        let (cot, answer) = split_once_exactly(rest, ANSWER_MARKER)?;
        Self::from_parts(question, cot, answer, style)
    }

    /// The answer as a number.
    pub fn gold(&self) -> Result<GoldAnswer, ParseError> {
        GoldAnswer::parse(&self.answer)
    }

    /// The steps read as equations (for [`CotStyle::Equations`] records).
    pub fn equations(&self) -> Result<Vec<Equation>, ParseError> {
        self.steps.iter().map(|s| Equation::parse(s)).collect()
    }

    /// Writes the record back as an icot line.
    pub fn to_line(&self) -> String {
        format!(
            "{}{QUESTION_SEPARATOR}{} {ANSWER_MARKER} {}",
            self.question, self.cot, self.answer
        )
    }
}

/// Splits on a separator that must occur exactly once.
pub(crate) fn split_once_exactly<'a>(
    text: &'a str,
    sep: &'static str,
) -> Result<(&'a str, &'a str), ParseError> {
    match text.matches(sep).count() {
        0 => Err(ParseError::MissingSeparator(sep)),
        1 => Ok(text.split_once(sep).expect("counted once")),
        count => Err(ParseError::RepeatedSeparator { sep, count }),
    }
}

/// The icot line format; `Icot::default()` is GSM8k-Aug, `Icot::nl()` the NL variant.
#[derive(Debug, Clone, Copy, Default)]
pub struct Icot {
    /// How the CoT is split into steps.
    pub style: CotStyle,
}

impl Icot {
    /// GSM8k-Aug-NL lines (CoT split on `". "`).
    pub fn nl() -> Self {
        Self {
            style: CotStyle::Sentences,
        }
    }
}

impl LineFormat for Icot {
    type Record = IcotRecord;

    fn parse_line(
        &mut self,
        _line_no: usize,
        line: &str,
    ) -> Result<Option<IcotRecord>, ParseError> {
        IcotRecord::parse_line(line, self.style).map(Some)
    }
}

/// The Hugging Face form (`zen-E/GSM8k-Aug`, `zen-E/GSM8k-Aug-NL`): JSON fields `question`, `cot`,
/// `answer`. Read it with [`crate::jsonl::Jsonl`] or from hub parquet rows.
#[derive(Debug, Clone, Copy, Default)]
pub struct IcotHf {
    /// How the CoT is split into steps.
    pub style: CotStyle,
}

impl JsonFormat for IcotHf {
    type Record = IcotRecord;

    fn parse_json(&mut self, value: &Value) -> Result<Option<IcotRecord>, ParseError> {
        IcotRecord::from_parts(
            str_field(value, "question")?,
            str_field(value, "cot")?,
            str_field(value, "answer")?,
            self.style,
        )
        .map(Some)
    }
}

/// Loads a GSM8k-Aug icot file (`gsm8k-aug/test.txt`).
pub fn load(path: impl AsRef<Path>, options: ReadOptions) -> Result<Loaded<IcotRecord>> {
    Icot::default().load(path, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonl::Jsonl;

    #[test]
    fn icot_line() {
        let line = "A robe takes 2 bolts?||<<2/2=1>> <<2+1=3>> #### 3";
        let r = IcotRecord::parse_line(line, CotStyle::Equations).unwrap();
        assert_eq!(r.steps, ["<<2/2=1>>", "<<2+1=3>>"]);
        assert_eq!(r.answer, "3");
        assert_eq!(r.to_line(), line);
        assert_eq!(r.equations().unwrap()[1].value, "3");
        assert!(IcotRecord::parse_line("q <<1=1>> #### 3", CotStyle::Equations).is_err());
        assert!(IcotRecord::parse_line("q||<<1=1>> 3", CotStyle::Equations).is_err());
        assert!(IcotRecord::parse_line("q||x #### 3", CotStyle::Equations).is_err());
        assert!(IcotRecord::parse_line("q||<<1=1>> #### ", CotStyle::Equations).is_err());
    }

    #[test]
    fn nl_and_hf() {
        let r = IcotRecord::parse_line(
            "Q?||He has 2+1 = 3 apples. So 3*2 = 6. #### 6",
            CotStyle::Sentences,
        )
        .unwrap();
        assert_eq!(r.steps, ["He has 2+1 = 3 apples", "So 3*2 = 6."]);
        let hf = r#"{"question": "Q?", "cot": "<<2/2=1>> <<2+1=3>>", "answer": "3"}"#;
        let rec = Jsonl(IcotHf::default())
            .load_str("hf", hf, ReadOptions::strict())
            .unwrap()
            .records
            .remove(0);
        assert_eq!(rec.to_line(), "Q?||<<2/2=1>> <<2+1=3>> #### 3");
    }
}
