//! Baselines a decoder has to beat on the same held-out pairs, scored with the same metrics:
//! - **copy-nothing**: the empty output (what every metric gives for saying nothing);
//! - **unigram**: one fixed output, the most frequent training words (lowercased, as token F1
//!   counts them) in frequency order, as many as the median training target has;
//! - **nearest-neighbour retrieval**: the training target whose source's semantic vector (the
//!   vector the decoder is given) has the largest cosine with the input's. A decoder that does not
//!   beat retrieval has not learned more from the vector than which training sentence it is near.

use std::collections::HashMap;

use serde::Serialize;

use crate::data::Examples;
use crate::metrics::{score, TextScores};

/// The baselines' scores on one set of held-out pairs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselineReport {
    /// The empty output.
    pub copy_nothing: TextScores,
    /// The fixed unigram output.
    pub unigram: TextScores,
    /// The unigram output itself.
    pub unigram_output: String,
    /// Nearest-neighbour retrieval from the training pairs.
    pub retrieval: TextScores,
    /// Mean cosine between the input's vector and the retrieved pair's.
    pub retrieval_cosine: f64,
    /// Training pairs searched.
    pub retrieval_pool: usize,
    /// The retrieved target of each held-out pair, in order.
    #[serde(skip)]
    pub retrieved: Vec<String>,
}

/// The most frequent lowercased whitespace words of `texts`, as many as the median text has, most
/// frequent first (ties in order of first appearance).
pub fn unigram_output(texts: &[String]) -> String {
    let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
    let mut lengths = Vec::with_capacity(texts.len());
    for text in texts {
        let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
        lengths.push(words.len());
        for word in words {
            let first = counts.len();
            counts.entry(word).or_insert((0, first)).0 += 1;
        }
    }
    lengths.sort_unstable();
    let median = lengths.get(lengths.len() / 2).copied().unwrap_or(0);
    let mut ranked: Vec<(String, (usize, usize))> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.1 .1.cmp(&b.1 .1)));
    ranked
        .into_iter()
        .take(median)
        .map(|(w, _)| w)
        .collect::<Vec<_>>()
        .join(" ")
}

/// For each of `queries`, the index of the row of `pool` with the largest cosine, and that cosine.
pub fn nearest_neighbours(pool: &[Vec<f32>], queries: &[Vec<f32>]) -> Vec<(usize, f64)> {
    let unit = |v: &[f32]| -> Vec<f32> {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        v.iter().map(|x| x / norm).collect()
    };
    let pool: Vec<Vec<f32>> = pool.iter().map(|v| unit(v)).collect();
    queries
        .iter()
        .map(|q| {
            let q = unit(q);
            let mut best = (0, f64::NEG_INFINITY);
            for (i, row) in pool.iter().enumerate() {
                let dot: f32 = row.iter().zip(&q).map(|(a, b)| a * b).sum();
                if f64::from(dot) > best.1 {
                    best = (i, f64::from(dot));
                }
            }
            best
        })
        .collect()
}

/// Scores the three baselines on `held_out`'s targets, retrieving from `train`.
pub fn baselines(train: &Examples, held_out: &Examples) -> BaselineReport {
    let refs: Vec<String> = held_out.pairs.iter().map(|p| p.trg.clone()).collect();
    let train_targets: Vec<String> = train.pairs.iter().map(|p| p.trg.clone()).collect();
    let unigram_output = unigram_output(&train_targets);
    let nearest = nearest_neighbours(&train.cond, &held_out.cond);
    let retrieved: Vec<String> = nearest
        .iter()
        .map(|&(i, _)| train_targets[i].clone())
        .collect();
    BaselineReport {
        copy_nothing: score(&vec![String::new(); refs.len()], &refs),
        unigram: score(&vec![unigram_output.clone(); refs.len()], &refs),
        unigram_output,
        retrieval: score(&retrieved, &refs),
        retrieval_cosine: nearest.iter().map(|&(_, c)| c).sum::<f64>()
            / nearest.len().max(1) as f64,
        retrieval_pool: train.len(),
        retrieved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Pair;

    fn examples(texts: &[&str], vectors: &[[f32; 3]]) -> Examples {
        Examples {
            pairs: texts
                .iter()
                .map(|t| Pair {
                    src: t.to_string(),
                    trg: t.to_string(),
                })
                .collect(),
            cond: vectors.iter().map(|v| v.to_vec()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn unigram_takes_the_median_length_of_the_most_frequent_words() {
        let texts: Vec<String> = ["The cat sat", "the dog sat down", "a cat"]
            .map(String::from)
            .to_vec();
        // Counts: the 2, cat 2, sat 2, dog 1, ...; median length 3.
        assert_eq!(unigram_output(&texts), "the cat sat");
    }

    #[test]
    fn retrieval_returns_the_training_target_with_the_closest_vector() {
        let train = examples(
            &["the cat sat", "a dog ran", "birds fly south"],
            &[[0.1, 0.0, 0.0], [0.0, 50.0, 0.0], [0.0, 0.0, 1.0]],
        );
        // Cosine, not dot product: the short first training vector is the nearest to the first input
        // (its dot product with the long second one is larger).
        let held_out = examples(
            &["the cat sat down", "a dog ran fast"],
            &[[5.0, 0.2, 0.1], [0.1, 0.3, 0.2]],
        );
        let report = baselines(&train, &held_out);
        assert_eq!(report.retrieved, ["the cat sat", "a dog ran"]);
        assert!(report.retrieval.token_f1 > 0.8, "{:?}", report.retrieval);
        assert_eq!(report.copy_nothing.token_f1, 0.0);
        assert_eq!(report.retrieval_pool, 3);
        let nearest = nearest_neighbours(&train.cond, &held_out.cond);
        assert!(
            (nearest[1].1 - 0.3 / (0.14f64).sqrt()).abs() < 1e-6,
            "{nearest:?}"
        );
    }
}
