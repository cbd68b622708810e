//! Scoring a held-out collection with a trained scorer and tabulating `prm_eval`'s results.

use std::path::Path;

use burn::prelude::*;
use latent_core::train::plot::{Plot, Series, Style};
use serde::Serialize;

use crate::batch::input_of;
use crate::loss::LossKind;
use crate::model::LatentRewardModel;
use crate::paths::PathSet;
use crate::select::{
    best_of_n, score_quality, Candidate, CurvePoint, QuestionPool, ScoreQuality, METHODS,
};
use crate::Result;

/// The scorer's raw value of every path of `set`, `batch` paths at a time.
pub fn score_paths<B: Backend>(
    model: &LatentRewardModel<B>,
    set: &PathSet,
    max_seq_len: usize,
    batch: usize,
) -> Result<Vec<f32>> {
    let device = model.head.weight.val().device();
    let all: Vec<usize> = (0..set.paths.len()).collect();
    let mut out = Vec::with_capacity(all.len());
    for chunk in all.chunks(batch.max(1)) {
        let scores = model.score(input_of::<B>(set, chunk, max_seq_len, &device))?;
        out.extend(
            scores
                .into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .expect("f32 scores"),
        );
    }
    Ok(out)
}

/// The held-out questions as scored pools.
pub fn pools_of(set: &PathSet, scores: &[f32], loss: LossKind) -> Vec<QuestionPool> {
    set.groups()
        .into_iter()
        .enumerate()
        .map(|(q, paths)| QuestionPool {
            greedy_correct: set.questions[q].greedy_correct,
            candidates: paths
                .into_iter()
                .map(|i| Candidate {
                    answer: set.paths[i].answer.clone(),
                    correct: set.paths[i].correct,
                    score: scores[i],
                    probability: loss.probability(scores[i]),
                })
                .collect(),
        })
        .collect()
}

/// What `prm_eval` reports.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Held-out questions.
    pub questions: usize,
    /// Paths per question in the pool.
    pub pool_size: usize,
    /// Accuracy of the noise-free decoding (%).
    pub greedy_accuracy: f64,
    /// Share of right paths (%).
    pub path_accuracy: f64,
    /// Score quality.
    pub quality: ScoreQuality,
    /// Accuracy against N for every method.
    pub curves: Vec<CurvePoint>,
    /// Bootstrap rounds.
    pub rounds: usize,
}

/// Scores `set` and builds the report for `ns` (those up to the pool size).
pub fn evaluate<B: Backend>(
    model: &LatentRewardModel<B>,
    set: &PathSet,
    loss: LossKind,
    max_seq_len: usize,
    ns: &[usize],
    rounds: usize,
    seed: u64,
) -> Result<EvalReport> {
    let scores = score_paths(model, set, max_seq_len, 64)?;
    let pools = pools_of(set, &scores, loss);
    let q = pools.len().max(1) as f64;
    Ok(EvalReport {
        questions: pools.len(),
        pool_size: set.meta.sampling.paths_per_question,
        greedy_accuracy: 100.0 * pools.iter().filter(|p| p.greedy_correct).count() as f64 / q,
        path_accuracy: 100.0 * set.meta.correct_paths as f64 / set.meta.paths.max(1) as f64,
        quality: score_quality(&pools),
        curves: best_of_n(&pools, ns, rounds, seed),
        rounds,
    })
}

impl EvalReport {
    /// The N values evaluated.
    fn ns(&self) -> Vec<usize> {
        let mut ns: Vec<usize> = self.curves.iter().map(|c| c.n).collect();
        ns.dedup();
        ns
    }

    /// The tables in Markdown: score quality, then accuracy (± bootstrap s.d.) per method and N.
    pub fn markdown(&self) -> String {
        let q = &self.quality;
        let opt = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.3}"));
        let mut s = format!(
            "{} held-out questions, {} paths each; greedy {:.1} %, paths right {:.1} %.\n\n\
             | paths | right (%) | MSE | MAE | AUROC | AUROC within questions |\n|---|---|---|---|---|---|\n\
             | {} | {:.1} | {:.4} | {:.4} | {} | {} |\n\n",
            self.questions,
            self.pool_size,
            self.greedy_accuracy,
            self.path_accuracy,
            q.paths,
            100.0 * q.positive_rate,
            q.mse,
            q.mae,
            opt(q.auroc),
            opt(q.within_question_auroc)
        );
        let ns = self.ns();
        s.push_str("| method |");
        for n in &ns {
            s.push_str(&format!(" N = {n} |"));
        }
        s.push_str("\n|---|");
        s.push_str(&"---|".repeat(ns.len()));
        s.push('\n');
        for m in METHODS {
            s.push_str(&format!("| {m} |"));
            for n in &ns {
                if let Some(c) = self.curves.iter().find(|c| c.method == m && c.n == *n) {
                    s.push_str(&format!(" {:.1} ± {:.1} |", c.accuracy, c.std));
                }
            }
            s.push('\n');
        }
        s.push_str(&format!(
            "\n± is the standard deviation over {} bootstrap rounds (questions resampled, N paths drawn per question).\n",
            self.rounds
        ));
        s
    }

    /// Accuracy (%) against log₂ N, one curve per method in [`METHODS`] order, as a PNG at `path`.
    pub fn plot(&self, path: &Path) -> Result<()> {
        let mut plot = Plot::new(
            format!(
                "best-of-N accuracy by selection method ({} questions)",
                self.questions
            ),
            "log₂ N (paths per question)",
            "accuracy (%)",
        )
        .size(900, 520);
        for m in METHODS {
            let points = self
                .curves
                .iter()
                .filter(|c| c.method == m)
                .map(|c| ((c.n as f64).log2(), c.accuracy))
                .collect();
            plot = plot.with(Series::new(m, points, Style::LineMarkers));
        }
        Ok(plot.save(path)?)
    }
}
