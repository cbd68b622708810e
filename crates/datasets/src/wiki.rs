//! Wikipedia sentences, one per line (SimCSE's wiki1m layout), with word-count filters.

use std::path::Path;

use crate::error::{ParseError, Result};
use crate::reader::{LineFormat, Loaded, ReadOptions};

/// The sentence-per-line format. Lines with fewer than `min_words` or more than `max_words`
/// whitespace-separated words are filtered out (counted in [`crate::ReadStats::filtered`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wiki {
    /// Fewest words kept (inclusive).
    pub min_words: usize,
    /// Most words kept (inclusive); `None` for no limit.
    pub max_words: Option<usize>,
}

impl Default for Wiki {
    fn default() -> Self {
        Self {
            min_words: 1,
            max_words: None,
        }
    }
}

impl Wiki {
    /// Keeps lines with `min..=max` words.
    pub fn words(min_words: usize, max_words: usize) -> Self {
        Self {
            min_words,
            max_words: Some(max_words),
        }
    }
}

impl LineFormat for Wiki {
    type Record = String;

    fn parse_line(&mut self, _line_no: usize, line: &str) -> Result<Option<String>, ParseError> {
        let words = line.split_whitespace().count();
        let keep = words >= self.min_words && self.max_words.is_none_or(|m| words <= m);
        Ok(keep.then(|| line.trim().to_string()))
    }
}

/// Loads a sentence-per-line file with a word-count filter.
pub fn load(path: impl AsRef<Path>, filter: Wiki, options: ReadOptions) -> Result<Loaded<String>> {
    filter.load(path, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_filter() {
        let text = "one\ntwo words here\n\n  four words are here  \n";
        let loaded = Wiki::words(2, 3)
            .load_str("w", text, ReadOptions::strict())
            .unwrap();
        assert_eq!(loaded.records, ["two words here"]);
        assert_eq!(loaded.stats.filtered, 2);
        assert_eq!(loaded.stats.blank, 1);
    }
}
