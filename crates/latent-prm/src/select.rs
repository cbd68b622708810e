//! Evaluation of a scorer (`prm_eval`): score quality on held-out paths (MSE, MAE, AUROC of the
//! score against correctness) and best-of-N selection curves against greedy decoding, a random
//! path, majority vote over the decoded answers, score-weighted vote, and pass@N (the oracle
//! bound), with bootstrap error bars (questions resampled with replacement, and N paths drawn
//! without replacement from each question's pool, per round).

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::seq::{index::sample, SliceRandom};
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// AUROC of `scores` against `labels` (Mann–Whitney U with average ranks for ties); `None` when
/// one class is empty.
pub fn auroc(scores: &[f32], labels: &[bool]) -> Option<f64> {
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += (i..=j).filter(|&k| labels[order[k]]).count() as f64 * average_rank;
        i = j + 1;
    }
    let u = rank_sum - (positives * (positives + 1)) as f64 / 2.0;
    Some(u / (positives * negatives) as f64)
}

/// The answer with the largest total weight among `answers` (`None` answers never win; ties go to
/// the answer seen first); `None` when every answer is `None`.
pub fn weighted_vote<'a>(answers: &[Option<&'a str>], weights: &[f32]) -> Option<&'a str> {
    let mut totals: HashMap<&str, (f64, usize)> = HashMap::new();
    for (i, (a, w)) in answers.iter().zip(weights).enumerate() {
        if let Some(a) = a {
            let entry = totals.entry(a).or_insert((0.0, i));
            entry.0 += f64::from(*w);
        }
    }
    totals
        .into_iter()
        .max_by(|(_, (wa, ia)), (_, (wb, ib))| wa.total_cmp(wb).then(ib.cmp(ia)))
        .map(|(a, _)| a)
}

/// The most frequent answer (ties go to the answer seen first).
pub fn majority_vote<'a>(answers: &[Option<&'a str>]) -> Option<&'a str> {
    weighted_vote(answers, &vec![1.0; answers.len()])
}

/// One sampled path of a held-out question, scored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The decoded answer (normalised number).
    pub answer: Option<String>,
    /// Whether it is right.
    pub correct: bool,
    /// The scorer's raw value (higher = better).
    pub score: f32,
    /// The value as a probability of being right (weights of the weighted vote).
    pub probability: f32,
}

/// A held-out question's pool of scored paths.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuestionPool {
    /// Whether the greedy (noise-free) answer is right.
    pub greedy_correct: bool,
    /// Its sampled paths.
    pub candidates: Vec<Candidate>,
}

/// Whether choosing `answer` among `picked` is right (every path with that answer agrees).
fn answer_correct(picked: &[&Candidate], answer: Option<&str>) -> bool {
    answer.is_some_and(|a| {
        picked
            .iter()
            .any(|c| c.correct && c.answer.as_deref() == Some(a))
    })
}

/// The selection methods compared.
pub const METHODS: [&str; 6] = [
    "greedy",
    "random",
    "majority vote",
    "score-weighted vote",
    "best-of-N (scorer)",
    "pass@N (oracle)",
];

/// Whether each method's choice among `picked` is right, in [`METHODS`] order.
fn choose(pool: &QuestionPool, picked: &[&Candidate], rng: &mut StdRng) -> [bool; 6] {
    let answers: Vec<Option<&str>> = picked.iter().map(|c| c.answer.as_deref()).collect();
    let weights: Vec<f32> = picked.iter().map(|c| c.probability).collect();
    let best = picked
        .iter()
        .enumerate()
        .max_by(|(i, a), (j, b)| a.score.total_cmp(&b.score).then(j.cmp(i)))
        .map(|(_, c)| c.correct)
        .unwrap_or(false);
    [
        pool.greedy_correct,
        picked[rng.random_range(0..picked.len())].correct,
        answer_correct(picked, majority_vote(&answers)),
        answer_correct(picked, weighted_vote(&answers, &weights)),
        best,
        picked.iter().any(|c| c.correct),
    ]
}

/// Accuracy of one method at one N.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurvePoint {
    /// The method ([`METHODS`]).
    pub method: String,
    /// Paths per question.
    pub n: usize,
    /// Mean accuracy over the bootstrap rounds (%).
    pub accuracy: f64,
    /// Standard deviation over the rounds (points).
    pub std: f64,
}

/// Best-of-N curves over `pools` for each `n` (at most the pool size), `rounds` bootstrap rounds.
pub fn best_of_n(
    pools: &[QuestionPool],
    ns: &[usize],
    rounds: usize,
    seed: u64,
) -> Vec<CurvePoint> {
    let mut rng = StdRng::seed_from_u64(seed);
    let pool_size = pools.iter().map(|p| p.candidates.len()).min().unwrap_or(0);
    let mut out = Vec::new();
    for &n in ns.iter().filter(|&&n| n >= 1 && n <= pool_size) {
        let mut per_round = vec![[0.0f64; 6]; rounds.max(1)];
        for round in per_round.iter_mut() {
            let mut hits = [0usize; 6];
            for _ in 0..pools.len() {
                let pool = &pools[rng.random_range(0..pools.len())];
                let mut picked: Vec<&Candidate> = sample(&mut rng, pool.candidates.len(), n)
                    .into_iter()
                    .map(|i| &pool.candidates[i])
                    .collect();
                picked.shuffle(&mut rng);
                for (h, right) in hits.iter_mut().zip(choose(pool, &picked, &mut rng)) {
                    *h += usize::from(right);
                }
            }
            for (r, h) in round.iter_mut().zip(hits) {
                *r = 100.0 * h as f64 / pools.len() as f64;
            }
        }
        for (m, name) in METHODS.iter().enumerate() {
            let values: Vec<f64> = per_round.iter().map(|r| r[m]).collect();
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                / (values.len().max(2) - 1) as f64;
            out.push(CurvePoint {
                method: (*name).into(),
                n,
                accuracy: mean,
                std: var.sqrt(),
            });
        }
    }
    out
}

/// How well scores separate right from wrong paths.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreQuality {
    /// Paths scored.
    pub paths: usize,
    /// Share of right paths.
    pub positive_rate: f64,
    /// Mean squared error of the probability against correctness.
    pub mse: f64,
    /// Mean absolute error of the probability against correctness.
    pub mae: f64,
    /// AUROC of the raw score against correctness, over all paths (`None`: one class only).
    pub auroc: Option<f64>,
    /// Mean AUROC within questions that have both right and wrong paths (what selection needs).
    pub within_question_auroc: Option<f64>,
}

/// Score quality over `pools`.
pub fn score_quality(pools: &[QuestionPool]) -> ScoreQuality {
    let all: Vec<&Candidate> = pools.iter().flat_map(|p| &p.candidates).collect();
    let n = all.len().max(1) as f64;
    let label = |c: &Candidate| if c.correct { 1.0 } else { 0.0 };
    let within: Vec<f64> = pools
        .iter()
        .filter_map(|p| {
            let s: Vec<f32> = p.candidates.iter().map(|c| c.score).collect();
            let l: Vec<bool> = p.candidates.iter().map(|c| c.correct).collect();
            auroc(&s, &l)
        })
        .collect();
    ScoreQuality {
        paths: all.len(),
        positive_rate: all.iter().filter(|c| c.correct).count() as f64 / n,
        mse: all
            .iter()
            .map(|c| (f64::from(c.probability) - label(c)).powi(2))
            .sum::<f64>()
            / n,
        mae: all
            .iter()
            .map(|c| (f64::from(c.probability) - label(c)).abs())
            .sum::<f64>()
            / n,
        auroc: auroc(
            &all.iter().map(|c| c.score).collect::<Vec<_>>(),
            &all.iter().map(|c| c.correct).collect::<Vec<_>>(),
        ),
        within_question_auroc: (!within.is_empty())
            .then(|| within.iter().sum::<f64>() / within.len() as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_on_hand_made_cases() {
        // Perfect separation, perfect inversion, and ties counted half.
        assert_eq!(
            auroc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]),
            Some(1.0)
        );
        assert_eq!(
            auroc(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]),
            Some(0.0)
        );
        assert_eq!(auroc(&[0.5, 0.5], &[false, true]), Some(0.5));
        // 3 positives, 2 negatives: pairs (p > n) = 5 of 6 counted, one tie → (5 + 0.5) / 6.
        let a = auroc(
            &[0.9, 0.4, 0.4, 0.7, 0.1],
            &[true, true, false, true, false],
        )
        .unwrap();
        assert!((a - 5.5 / 6.0).abs() < 1e-12, "{a}");
        assert_eq!(auroc(&[0.1, 0.2], &[true, true]), None);
    }

    #[test]
    fn votes_on_hand_made_cases() {
        let answers = [Some("3"), Some("5"), None, Some("5"), Some("3")];
        // 3 and 5 tie on count: the first seen wins; None never wins.
        assert_eq!(majority_vote(&answers), Some("3"));
        assert_eq!(majority_vote(&[None, None]), None);
        // Weights change the winner.
        assert_eq!(
            weighted_vote(&answers, &[0.1, 0.9, 5.0, 0.2, 0.1]),
            Some("5")
        );
        assert_eq!(
            weighted_vote(&answers, &[0.6, 0.1, 5.0, 0.1, 0.1]),
            Some("3")
        );
    }

    fn candidate(answer: &str, correct: bool, score: f32) -> Candidate {
        Candidate {
            answer: Some(answer.into()),
            correct,
            score,
            probability: score,
        }
    }

    #[test]
    fn best_of_n_curves_on_hand_made_pools() {
        // Two right paths in four, the scorer ranks a right one first, majority picks the wrong
        // answer; greedy is wrong.
        let pool = QuestionPool {
            greedy_correct: false,
            candidates: vec![
                candidate("7", true, 0.9),
                candidate("4", false, 0.2),
                candidate("4", false, 0.1),
                candidate("4", false, 0.3),
            ],
        };
        let curves = best_of_n(std::slice::from_ref(&pool), &[4, 5], 10, 1);
        let at = |m: &str| {
            curves
                .iter()
                .find(|c| c.method == m && c.n == 4)
                .unwrap()
                .accuracy
        };
        assert_eq!(at("greedy"), 0.0);
        assert_eq!(at("majority vote"), 0.0);
        assert_eq!(at("score-weighted vote"), 100.0); // "7" weighs 0.9, "4" 0.2 + 0.1 + 0.3
        assert_eq!(at("best-of-N (scorer)"), 100.0);
        assert_eq!(at("pass@N (oracle)"), 100.0);
        assert!(
            curves.iter().all(|c| c.n == 4),
            "N beyond the pool is skipped"
        );
        // N = 1: every method but greedy picks one random path, right one time in four on average.
        let one = best_of_n(std::slice::from_ref(&pool), &[1], 4000, 2);
        let best = one
            .iter()
            .find(|c| c.method == "best-of-N (scorer)")
            .unwrap()
            .accuracy;
        assert!((best - 25.0).abs() < 3.0, "{best}");
    }
}
