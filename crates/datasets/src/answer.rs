//! Answers: gold extraction (GSM8K `#### N`, icot lines), prediction extraction (CODI's last
//! number, HRPO's text after the last `####`) and numeric comparison.
//!
//! Only ASCII digits count as digits (Python's `\d` also matches other Unicode digits; GSM8K and
//! model outputs in this workspace do not contain them).

use crate::error::ParseError;

/// The marker before a final answer.
pub const ANSWER_MARKER: &str = "####";

/// A gold answer: the text as written and its numeric value (thousands separators removed).
#[derive(Debug, Clone, PartialEq)]
pub struct GoldAnswer {
    /// The answer as written in the file, trimmed (e.g. `"1,450,000"`).
    pub text: String,
    /// Its value as a float (e.g. `1450000.0`).
    pub value: f64,
}

impl GoldAnswer {
    /// Parses a plain decimal answer such as `18`, `-3`, `2.5` or `1,450,000`.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ParseError::Empty("answer"));
        }
        let value = parse_decimal(text).ok_or_else(|| ParseError::BadNumber(text.to_string()))?;
        Ok(Self {
            text: text.to_string(),
            value,
        })
    }

    /// Parses the text after the last `####` of `text` (GSM8K answers, icot CoT parts).
    pub fn after_marker(text: &str) -> Result<Self, ParseError> {
        let (_, tail) = text
            .rsplit_once(ANSWER_MARKER)
            .ok_or(ParseError::MissingSeparator(ANSWER_MARKER))?;
        Self::parse(tail)
    }

    /// The answer in HRPO's normal form (see [`hrpo_normalize`]), e.g. `"1450000"`.
    pub fn normalized(&self) -> String {
        hrpo_normalize(&self.text).unwrap_or_else(|| self.text.clone())
    }
}

/// Parses `[+-]digits[.digits]` after removing commas; anything else (including `inf`, `NaN`,
/// exponents) is `None`.
pub fn parse_decimal(text: &str) -> Option<f64> {
    let s: String = text.trim().chars().filter(|&c| c != ',').collect();
    let body = s.strip_prefix(['-', '+']).unwrap_or(&s);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits_ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !digits_ok(int) || !digits_ok(frac) {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Finds the non-overlapping, leftmost matches of `-?\d+/?\.?\d*` (with `slash`) or
/// `-?\d+\.?\d*` (without), as Python's `re.findall` would.
fn find_numbers(text: &str, slash: bool) -> Vec<&str> {
    let b = text.as_bytes();
    let digit = |i: usize| i < b.len() && b[i].is_ascii_digit();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let mut j = i;
        if b[j] == b'-' {
            j += 1;
        }
        if !digit(j) {
            i += 1;
            continue;
        }
        while digit(j) {
            j += 1;
        }
        if slash && j < b.len() && b[j] == b'/' {
            j += 1;
        }
        if j < b.len() && b[j] == b'.' {
            j += 1;
        }
        while digit(j) {
            j += 1;
        }
        out.push(&text[start..j]);
        i = j;
    }
    out
}

/// CODI's evaluator: remove every comma, take the last match of `-?\d+\.?\d*`, read it as a float.
/// `None` when the text has no number (CODI then scores it as wrong).
pub fn last_number(text: &str) -> Option<f64> {
    let cleaned = text.replace(',', "");
    find_numbers(&cleaned, false)
        .last()
        .and_then(|m| m.parse::<f64>().ok())
        .filter(|v| v.is_finite())
}

/// Removes commas that sit between two digits (`1,000` → `1000`; `a, b` is kept).
pub fn remove_thousands_separators(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let between_digits = c == ','
            && i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if !between_digits {
            out.push(c);
        }
    }
    out
}

/// HRPO's answer normalisation: strip, drop trailing `.` and `/`, take the last match of
/// `-?\d+/?\.?\d*`, write `18.00` as `18` and `5/2` as `2.5`. `None` when there is no number.
///
/// Deviation from HRPO: thousands separators are removed first (HRPO's regex turns `1,000` into
/// `0`).
pub fn hrpo_normalize(text: &str) -> Option<String> {
    let cleaned = remove_thousands_separators(text);
    let trimmed = cleaned.trim().trim_end_matches(['.', '/']);
    let m = *find_numbers(trimmed, true).last()?;
    let value = match m.split_once('/') {
        Some((num, den)) if !den.is_empty() => {
            let (n, d) = (num.parse::<f64>().ok()?, den.parse::<f64>().ok()?);
            if d == 0.0 {
                return Some(m.to_string());
            }
            n / d
        }
        Some((num, _)) => num.parse::<f64>().ok()?,
        None => m.parse::<f64>().ok()?,
    };
    if !value.is_finite() {
        return Some(m.to_string());
    }
    Some(format_number(value))
}

/// Writes a float the way the normalised answers are compared: integers without a fraction
/// (`18`), other values in the shortest form that reads back exactly (`2.5`).
pub fn format_number(value: f64) -> String {
    if value == value.trunc() && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// HRPO's answer extraction from a completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HrpoExtraction {
    /// How many `####` markers the completion contains (the reward needs exactly one).
    pub markers: usize,
    /// The normalised answer after the last marker, if there is a marker and a number after it.
    pub answer: Option<String>,
}

/// Takes the text after the last `####` and normalises it with [`hrpo_normalize`].
pub fn hrpo_extract(completion: &str) -> HrpoExtraction {
    let markers = completion.matches(ANSWER_MARKER).count();
    let answer = completion
        .rsplit_once(ANSWER_MARKER)
        .and_then(|(_, tail)| hrpo_normalize(tail));
    HrpoExtraction { markers, answer }
}

/// HRPO's GSM8K reward: 1.0 iff the completion has exactly one `####` and the normalised answer
/// after it equals the normalised gold answer; else 0.0.
pub fn hrpo_reward(completion: &str, gold: &str) -> f64 {
    let ex = hrpo_extract(completion);
    match (ex.markers, ex.answer, hrpo_normalize(gold)) {
        (1, Some(pred), Some(gold)) if pred == gold => 1.0,
        _ => 0.0,
    }
}

/// Compares a prediction with a gold value as floats, as CODI's evaluator does (exact equality;
/// both sides come from decimal text, so equal numbers read back equal).
pub fn numbers_match(prediction: Option<f64>, gold: f64) -> bool {
    prediction == Some(gold)
}

/// CODI's accuracy check for one decoded text: [`last_number`] compared with the gold value.
pub fn codi_correct(decoded: &str, gold: &GoldAnswer) -> bool {
    numbers_match(last_number(decoded), gold.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gold_parsing() {
        assert_eq!(GoldAnswer::parse(" 1,450,000 ").unwrap().value, 1_450_000.0);
        assert_eq!(GoldAnswer::parse("-3").unwrap().value, -3.0);
        assert_eq!(GoldAnswer::parse("2.5").unwrap().value, 2.5);
        assert!(GoldAnswer::parse("inf").is_err());
        assert!(GoldAnswer::parse("1e5").is_err());
        assert!(GoldAnswer::parse("").is_err());
        assert!(GoldAnswer::parse("-").is_err());
        assert_eq!(
            GoldAnswer::after_marker("a\n#### 18").unwrap().text,
            "18".to_string()
        );
        assert!(GoldAnswer::after_marker("no marker").is_err());
    }

    #[test]
    fn codi_last_number() {
        assert_eq!(last_number("The answer is: 1,000."), Some(1000.0));
        assert_eq!(last_number("x = -3.5 then 7"), Some(7.0));
        assert_eq!(last_number("ends with 5."), Some(5.0));
        assert_eq!(last_number("a-b"), None);
        assert_eq!(last_number("-2"), Some(-2.0));
        assert_eq!(last_number("nothing"), None);
        let gold = GoldAnswer::parse("18").unwrap();
        assert!(codi_correct("The answer is: 18", &gold));
        assert!(codi_correct("The answer is: 18.0", &gold));
        assert!(!codi_correct("The answer is: 19", &gold));
    }

    #[test]
    fn hrpo_normalisation() {
        assert_eq!(hrpo_normalize(" 18.00 ").as_deref(), Some("18"));
        assert_eq!(hrpo_normalize("5/2").as_deref(), Some("2.5"));
        assert_eq!(hrpo_normalize("$1,000.").as_deref(), Some("1000"));
        assert_eq!(hrpo_normalize("3 apples, 4 pears").as_deref(), Some("4"));
        assert_eq!(hrpo_normalize("-7").as_deref(), Some("-7"));
        assert_eq!(hrpo_normalize("1/0").as_deref(), Some("1/0"));
        assert_eq!(hrpo_normalize("none"), None);
        assert_eq!(hrpo_reward("so 9*2=18 #### 18", "18"), 1.0);
        assert_eq!(hrpo_reward("#### 18.0", "18"), 1.0);
        assert_eq!(hrpo_reward("#### 1,000", "1000"), 1.0);
        assert_eq!(hrpo_reward("#### 17 #### 18", "18"), 0.0);
        assert_eq!(hrpo_reward("18", "18"), 0.0);
        assert_eq!(hrpo_extract("a #### b #### 3").markers, 2);
        assert_eq!(
            remove_thousands_separators("1,000, and 2,5"),
            "1000, and 25"
        );
    }
}
