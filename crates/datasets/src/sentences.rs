//! Sentence splitting for text corpora: Unicode sentence boundaries (UAX #29, through
//! `unicode-segmentation`), trimmed, empty pieces dropped. A boundary follows `.`, `?` or `!` when
//! the next word starts in upper case (so "e.g. the" stays whole, "Mr. Smith" is cut), and every
//! line break is a boundary.
//!
//! ```
//! use latent_datasets::sentences::split_sentences;
//!
//! let s: Vec<&str> = split_sentences("Tom has 3.5 apples. He eats one! How many are left?").collect();
//! assert_eq!(s, ["Tom has 3.5 apples.", "He eats one!", "How many are left?"]);
//! ```

use unicode_segmentation::UnicodeSegmentation;

/// The sentences of `text`, trimmed, in order; whitespace-only pieces are skipped.
pub fn split_sentences(text: &str) -> impl Iterator<Item = &str> {
    text.unicode_sentences()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_terminators_and_line_breaks_only() {
        let text = "Natalia sold clips to 48 of her friends in April, and then she sold half as \
                    many clips in May.  How many clips did Natalia sell altogether in April and May?\n\
                    A line without a stop\nIt costs $2.50 (e.g. at a shop).";
        let got: Vec<&str> = split_sentences(text).collect();
        assert_eq!(
            got,
            [
                "Natalia sold clips to 48 of her friends in April, and then she sold half as many \
                 clips in May.",
                "How many clips did Natalia sell altogether in April and May?",
                "A line without a stop",
                "It costs $2.50 (e.g. at a shop).",
            ]
        );
        assert_eq!(split_sentences(" \n\n ").count(), 0);
    }
}
