//! Exact match and token F1.

use std::collections::HashMap;

/// Whitespace-normalised string equality (case-sensitive).
pub fn exact_match(hypothesis: &str, reference: &str) -> bool {
    hypothesis
        .split_whitespace()
        .eq(reference.split_whitespace())
}

/// Exact match that forgives what an uncased word-piece tokenizer cannot reproduce: equal after
/// lowercasing and deleting all whitespace (so "part - time" matches "Part-time").
pub fn exact_match_uncased(hypothesis: &str, reference: &str) -> bool {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect()
    };
    squash(hypothesis) == squash(reference)
}

/// Bag-of-tokens F1 over lowercased whitespace tokens (SQuAD style); 1 when both are empty.
pub fn token_f1(hypothesis: &str, reference: &str) -> f64 {
    let h: Vec<String> = hypothesis
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    let r: Vec<String> = reference
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    if h.is_empty() || r.is_empty() {
        return f64::from(u8::from(h.is_empty() && r.is_empty()));
    }
    let mut counts: HashMap<&str, isize> = HashMap::new();
    for t in &r {
        *counts.entry(t).or_insert(0) += 1;
    }
    let mut common = 0;
    for t in &h {
        if let Some(c) = counts.get_mut(t.as_str()) {
            if *c > 0 {
                *c -= 1;
                common += 1;
            }
        }
    }
    if common == 0 {
        return 0.0;
    }
    let p = common as f64 / h.len() as f64;
    let rec = common as f64 / r.len() as f64;
    2.0 * p * rec / (p + rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn em_and_f1() {
        assert!(exact_match(" a  b ", "a b"));
        assert!(!exact_match("a b", "a c"));
        assert!(!exact_match("Part-time", "part - time"));
        assert!(exact_match_uncased("part - time work.", "Part-time work ."));
        assert!(!exact_match_uncased("part time", "part-time"));
        assert_eq!(token_f1("a b", "a b"), 1.0);
        // 1 common of 2 and 4 tokens: p = 0.5, r = 0.25 → 1/3.
        assert!((token_f1("a x", "a b c d") - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(token_f1("", ""), 1.0);
        assert_eq!(token_f1("a", ""), 0.0);
        // Repeated tokens are matched at most as often as they occur in the reference.
        assert!((token_f1("a a", "a b") - 0.5).abs() < 1e-12);
    }
}
