//! Calculator annotations `<<expr=value>>` as GSM8K and GSM8k-Aug write them.

use std::fmt;

use crate::error::ParseError;

/// One equation: the expression and the value written after its last `=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equation {
    /// The expression, e.g. `16-3-4`.
    pub expr: String,
    /// The value as written, e.g. `9`.
    pub value: String,
}

impl Equation {
    /// Parses the inside of an annotation, `16-3-4=9`.
    pub fn parse_inner(inner: &str) -> Result<Self, ParseError> {
        match inner.rsplit_once('=') {
            Some((expr, value)) if !expr.trim().is_empty() && !value.trim().is_empty() => {
                Ok(Self {
                    expr: expr.to_string(),
                    value: value.to_string(),
                })
            }
            _ => Err(ParseError::BadEquation(inner.to_string())),
        }
    }

    /// Parses a whole annotation, `<<16-3-4=9>>`.
    pub fn parse(token: &str) -> Result<Self, ParseError> {
        token
            .strip_prefix("<<")
            .and_then(|t| t.strip_suffix(">>"))
            .ok_or_else(|| ParseError::BadEquation(token.to_string()))
            .and_then(Self::parse_inner)
    }

    /// Finds every `<<...>>` in `text`: returns the text with the annotations removed and the
    /// equations in order. An unclosed `<<` or a stray `>>` is an error.
    pub fn extract_all(text: &str) -> Result<(String, Vec<Equation>), ParseError> {
        let mut plain = String::with_capacity(text.len());
        let mut equations = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("<<") {
            let before = &rest[..start];
            if before.contains(">>") {
                return Err(ParseError::BadEquation(format!("stray `>>` in {text:?}")));
            }
            plain.push_str(before);
            let after = &rest[start + 2..];
            let end = after
                .find(">>")
                .ok_or_else(|| ParseError::BadEquation(format!("unclosed `<<` in {text:?}")))?;
            equations.push(Self::parse_inner(&after[..end])?);
            rest = &after[end + 2..];
        }
        if rest.contains(">>") {
            return Err(ParseError::BadEquation(format!("stray `>>` in {text:?}")));
        }
        plain.push_str(rest);
        Ok((plain, equations))
    }
}

impl fmt::Display for Equation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<<{}={}>>", self.expr, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations() {
        let e = Equation::parse("<<16-3-4=9>>").unwrap();
        assert_eq!((e.expr.as_str(), e.value.as_str()), ("16-3-4", "9"));
        assert_eq!(e.to_string(), "<<16-3-4=9>>");
        assert!(Equation::parse("<<16-3-4>>").is_err());
        assert!(Equation::parse("16=3").is_err());
        let (plain, eqs) = Equation::extract_all("She makes 9 * 2 = $<<9*2=18>>18 a day.").unwrap();
        assert_eq!(plain, "She makes 9 * 2 = $18 a day.");
        assert_eq!(eqs.len(), 1);
        assert!(Equation::extract_all("a <<1+1=2").is_err());
        assert!(Equation::extract_all("a >> b").is_err());
    }
}
