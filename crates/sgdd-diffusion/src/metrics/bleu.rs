//! BLEU-4 two ways:
//! - [`sentence_bleu`]: NLTK's `sentence_bleu` with `SmoothingFunction().method4` on whitespace
//!   tokens, one reference: the DiffuSeq protocol, reported as the mean over the test set
//!   ([`mean_sentence_bleu`], on a 0–1 scale);
//! - [`corpus_bleu`]: sacreBLEU's `corpus_bleu` defaults (13a tokenisation, case-sensitive, `exp`
//!   smoothing, 0–100 scale).

use std::collections::HashMap;

const MAX_ORDER: usize = 4;

fn ngram_counts<'a, 'b>(tokens: &'b [&'a str], n: usize) -> HashMap<&'b [&'a str], usize> {
    let mut counts = HashMap::new();
    if tokens.len() >= n {
        for w in tokens.windows(n) {
            *counts.entry(w).or_insert(0) += 1;
        }
    }
    counts
}

/// Clipped matches and hypothesis n-gram count of order `n`.
fn matches(hyp: &[&str], reference: &[&str], n: usize) -> (usize, usize) {
    let h = ngram_counts(hyp, n);
    let r = ngram_counts(reference, n);
    let clipped = h.iter().map(|(g, &c)| c.min(*r.get(g).unwrap_or(&0))).sum();
    (clipped, h.values().sum())
}

/// NLTK `sentence_bleu([reference.split()], hypothesis.split(), smoothing_function=method4)`
/// (weights 0.25 each, `k = 5`), in `[0, 1]`.
pub fn sentence_bleu(hypothesis: &str, reference: &str) -> f64 {
    let hyp: Vec<&str> = hypothesis.split_whitespace().collect();
    let reference: Vec<&str> = reference.split_whitespace().collect();
    let mut p = [(0usize, 0usize); MAX_ORDER];
    for (n, slot) in p.iter_mut().enumerate() {
        let (m, total) = matches(&hyp, &reference, n + 1);
        *slot = (m, total.max(1));
    }
    if p[0].0 == 0 {
        return 0.0;
    }
    let (c, r) = (hyp.len() as f64, reference.len() as f64);
    let bp = if c > r {
        1.0
    } else if c == 0.0 {
        0.0
    } else {
        (1.0 - r / c).exp()
    };
    // method4: a zero count at order i gets 1 / (2^incvnt · k / ln(len)) over the denominator.
    let mut incvnt = 1;
    let mut log_sum = 0.0;
    for &(m, d) in &p {
        let value = if m == 0 && hyp.len() > 1 {
            let numerator = 1.0 / (2f64.powi(incvnt) * 5.0 / c.ln());
            incvnt += 1;
            numerator / d as f64
        } else {
            m as f64 / d as f64
        };
        if value > 0.0 {
            log_sum += 0.25 * value.ln();
        }
    }
    bp * log_sum.exp()
}

/// The mean of [`sentence_bleu`] over pairs (DiffuSeq's reported BLEU).
pub fn mean_sentence_bleu(hypotheses: &[String], references: &[String]) -> f64 {
    if hypotheses.is_empty() {
        return 0.0;
    }
    hypotheses
        .iter()
        .zip(references)
        .map(|(h, r)| sentence_bleu(h, r))
        .sum::<f64>()
        / hypotheses.len() as f64
}

/// sacreBLEU's `13a` tokenizer (mteval-v13a).
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let s: Vec<char> = format!(" {line} ").chars().collect();
    // ([\{-\~\[-\` -\&\(-\+\:-\@\/]) → ' \1 '
    let punct = |c: char| {
        ('{'..='~').contains(&c)
            || ('['..='`').contains(&c)
            || (' '..='&').contains(&c)
            || ('('..='+').contains(&c)
            || (':'..='@').contains(&c)
            || c == '/'
    };
    let mut a = Vec::with_capacity(s.len() * 2);
    for &c in &s {
        if punct(c) {
            a.extend([' ', c, ' ']);
        } else {
            a.push(c);
        }
    }
    // Each of the remaining rules is a two-character pattern substituted left to right without
    // overlap, as Python's re.sub does.
    let sub = |s: Vec<char>,
               hit: &dyn Fn(char, char) -> bool,
               out: &dyn Fn(char, char, &mut Vec<char>)| {
        let mut o = Vec::with_capacity(s.len() + 8);
        let mut i = 0;
        while i < s.len() {
            if i + 1 < s.len() && hit(s[i], s[i + 1]) {
                out(s[i], s[i + 1], &mut o);
                i += 2;
            } else {
                o.push(s[i]);
                i += 1;
            }
        }
        o
    };
    let digit = |c: char| c.is_ascii_digit();
    let dot = |c: char| c == '.' || c == ',';
    // ([^0-9])([\.,]) → '\1 \2 '
    let b = sub(a, &|x, y| !digit(x) && dot(y), &|x, y, o| {
        o.extend([x, ' ', y, ' '])
    });
    // ([\.,])([^0-9]) → ' \1 \2'
    let c = sub(b, &|x, y| dot(x) && !digit(y), &|x, y, o| {
        o.extend([' ', x, ' ', y])
    });
    // ([0-9])(-) → '\1 \2 '
    let d = sub(c, &|x, y| digit(x) && y == '-', &|x, y, o| {
        o.extend([x, ' ', y, ' '])
    });
    let text: String = d.into_iter().collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A corpus BLEU score with its statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusBleu {
    /// BLEU, 0–100.
    pub score: f64,
    /// Matched n-grams per order.
    pub correct: [usize; MAX_ORDER],
    /// Hypothesis n-grams per order.
    pub total: [usize; MAX_ORDER],
    /// Hypothesis tokens.
    pub sys_len: usize,
    /// Reference tokens.
    pub ref_len: usize,
}

/// sacreBLEU `corpus_bleu(hypotheses, [references])` with its defaults (13a, `exp` smoothing).
pub fn corpus_bleu(hypotheses: &[String], references: &[String]) -> CorpusBleu {
    let mut correct = [0usize; MAX_ORDER];
    let mut total = [0usize; MAX_ORDER];
    let (mut sys_len, mut ref_len) = (0, 0);
    for (h, r) in hypotheses.iter().zip(references) {
        let (h, r) = (tokenize_13a(h), tokenize_13a(r));
        let hyp: Vec<&str> = h.split(' ').filter(|t| !t.is_empty()).collect();
        let reference: Vec<&str> = r.split(' ').filter(|t| !t.is_empty()).collect();
        sys_len += hyp.len();
        ref_len += reference.len();
        for n in 0..MAX_ORDER {
            let (m, t) = matches(&hyp, &reference, n + 1);
            correct[n] += m;
            total[n] += t;
        }
    }
    let bp = if sys_len < ref_len {
        if sys_len > 0 {
            (1.0 - ref_len as f64 / sys_len as f64).exp()
        } else {
            0.0
        }
    } else {
        1.0
    };
    let mut score = 0.0;
    if correct.iter().any(|&c| c > 0) {
        let mut precisions = [0.0f64; MAX_ORDER];
        let mut smooth = 1.0;
        for n in 0..MAX_ORDER {
            if total[n] == 0 {
                break;
            }
            precisions[n] = if correct[n] == 0 {
                smooth *= 2.0;
                100.0 / (smooth * total[n] as f64)
            } else {
                100.0 * correct[n] as f64 / total[n] as f64
            };
        }
        // sacreBLEU's my_log: log(0) = -9999999999.
        let log = |p: f64| if p == 0.0 { -9_999_999_999.0 } else { p.ln() };
        score = bp * (precisions.iter().map(|&p| log(p)).sum::<f64>() / MAX_ORDER as f64).exp();
    }
    CorpusBleu {
        score,
        correct,
        total,
        sys_len,
        ref_len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_like_13a() {
        assert_eq!(tokenize_13a("Hello, world."), "Hello , world .");
        assert_eq!(
            tokenize_13a("3,000 and 3.5 or 1990-2000"),
            "3,000 and 3.5 or 1990 - 2000"
        );
        assert_eq!(tokenize_13a("a&amp;b \"q\""), "a & b \" q \"");
    }

    #[test]
    fn identical_sentences_score_one() {
        let s = "the cat sat on the mat";
        assert!((sentence_bleu(s, s) - 1.0).abs() < 1e-12);
        assert!((corpus_bleu(&[s.into()], &[s.into()]).score - 100.0).abs() < 1e-9);
        assert_eq!(sentence_bleu("", s), 0.0);
    }
}
