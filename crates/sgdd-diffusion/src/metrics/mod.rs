//! Text metrics: exact match, token F1, BLEU-4 (DiffuSeq's sentence protocol and sacreBLEU's corpus
//! BLEU), and the summary of a set of generations.

pub mod bleu;
pub mod text;

pub use bleu::{corpus_bleu, mean_sentence_bleu, sentence_bleu, tokenize_13a, CorpusBleu};
pub use text::{exact_match, exact_match_uncased, token_f1};

use serde::Serialize;

/// Scores of hypotheses against references.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextScores {
    /// Pairs scored.
    pub count: usize,
    /// Fraction of exact matches.
    pub exact_match: f64,
    /// Fraction of matches ignoring case and whitespace ([`exact_match_uncased`]): the exact match an
    /// uncased encoder's tokenizer can reach.
    pub exact_match_uncased: f64,
    /// Mean token F1.
    pub token_f1: f64,
    /// Mean sentence BLEU-4 (NLTK method 4, whitespace tokens; 0–1).
    pub sentence_bleu: f64,
    /// sacreBLEU corpus BLEU (13a; 0–100).
    pub corpus_bleu: f64,
}

/// Scores `hypotheses` against `references` (same length).
pub fn score(hypotheses: &[String], references: &[String]) -> TextScores {
    let n = hypotheses.len().max(1) as f64;
    let mean = |per_pair: fn(&str, &str) -> f64| {
        hypotheses
            .iter()
            .zip(references)
            .map(|(h, r)| per_pair(h, r))
            .sum::<f64>()
            / n
    };
    TextScores {
        count: hypotheses.len(),
        exact_match: mean(|h, r| f64::from(u8::from(exact_match(h, r)))),
        exact_match_uncased: mean(|h, r| f64::from(u8::from(exact_match_uncased(h, r)))),
        token_f1: mean(token_f1),
        sentence_bleu: mean_sentence_bleu(hypotheses, references),
        corpus_bleu: corpus_bleu(hypotheses, references).score,
    }
}
