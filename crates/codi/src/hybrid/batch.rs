//! Phase 2 data: hybrid samples tokenized, and collated into the "wavefront" layout the batched
//! student pass runs through one KV cache.
//!
//! A sample's student sequence is `Q ‖ E_0 ‖ <bot> z… <eot> ‖ E_1 ‖ … ‖ E_k ‖ A ‖ EOS` with `k`
//! latent runs and `k + 1` explicit chunks (any may be empty). The batch runs chunk index by chunk
//! index: chunk `i` of row `r` is `[Q if i = 0] [<eot> if i > 0] E_i [A if i = k_r] [<bot> if
//! i < k_r]`, right-padded (rows past their last chunk are all padding); then latent run `i` feeds
//! each row its own number of thoughts (rows with fewer are masked). Padding slots are invalid in
//! the cache and positions count real entries only, so the padding changes nothing. CE covers
//! every explicit CoT token, the answer and EOS (not `<bot>`/`<eot>`, which the controller
//! inserts, nor the question).

use latent_datasets::rng::SplitMix64;

use super::schema::{HybridSample, Segment};
use crate::batch::{collate, Grid, SeqBatch};
use crate::data::{encode, prepare, PrepConfig, Problem, Tokenized};
use crate::tokens::SpecialTokens;
use crate::{CodiError, Result};

/// One tokenized hybrid sample.
#[derive(Debug, Clone, PartialEq)]
pub struct HybridExample {
    /// The explicit form (teacher): question, full CoT, answer, pre-answer index.
    pub teacher: Tokenized,
    /// Explicit chunks `E_0 … E_k` (ids; may be empty).
    pub chunks: Vec<Vec<u32>>,
    /// Thoughts of each latent run (`k` entries).
    pub runs: Vec<usize>,
}

impl HybridExample {
    /// The same sample with every step explicit (the `hybrid_cot_only_ratio` case).
    pub fn cot_only(&self) -> Self {
        Self {
            teacher: self.teacher.clone(),
            chunks: vec![self.teacher.cot.clone()],
            runs: Vec::new(),
        }
    }
}

/// Tokenizes hybrid samples: the teacher with [`prepare`] (steps as given, none dropped: Phase 1
/// already dropped the last), each explicit segment on its own.
pub fn prepare_hybrid(
    samples: &[HybridSample],
    tokenizer: &tokenizers::Tokenizer,
    prep: &PrepConfig,
) -> Result<Vec<HybridExample>> {
    let prep = PrepConfig {
        keep_last_step: true,
        ..prep.clone()
    };
    let mut out = Vec::with_capacity(samples.len());
    for s in samples {
        let problem = Problem {
            question: s.question.clone(),
            steps: s.steps.clone(),
            answer: s.answer.clone(),
        };
        let Some(teacher) = prepare(&[problem], tokenizer, &prep)?.0.pop() else {
            continue;
        };
        let mut chunks = vec![Vec::new()];
        let mut runs = Vec::new();
        for seg in &s.segments {
            match seg {
                Segment::Explicit { text, .. } => chunks
                    .last_mut()
                    .expect("a chunk")
                    .extend(encode(tokenizer, text)?),
                Segment::Latent { count, .. } => {
                    runs.push(*count);
                    chunks.push(Vec::new());
                }
            }
        }
        out.push(HybridExample {
            teacher,
            chunks,
            runs,
        });
    }
    if out.is_empty() {
        return Err(CodiError::Empty("the hybrid training samples".into()));
    }
    Ok(out)
}

/// One Phase 2 micro-batch.
#[derive(Debug, Clone, PartialEq)]
pub struct HybridBatch {
    /// The explicit sequences `Q ‖ CoT ‖ A` (reference CE and distillation targets).
    pub teacher: SeqBatch,
    /// Student chunk `i` of every row, `[b, s_i]` (ids, mask, targets, weights).
    pub chunks: Vec<SeqBatch>,
    /// `runs[i][r]`: thoughts of row `r` after chunk `i` (0: none).
    pub runs: Vec<Vec<usize>>,
    /// `bot[i][r]`: position of `<bot>` in chunk `i` of row `r` (0 where the row has no run).
    pub bot: Vec<Vec<usize>>,
    /// Per row, the chunk holding the answer.
    pub final_chunk: Vec<usize>,
    /// Per row, the pre-answer position inside its final chunk.
    pub distill: Vec<usize>,
    /// Rows.
    pub size: usize,
}

/// Collates hybrid examples; `cot_only[r]` trains row `r` as pure explicit CoT.
pub fn collate_hybrid(
    examples: &[&HybridExample],
    cot_only: &[bool],
    tokens: &SpecialTokens,
) -> HybridBatch {
    let b = examples.len();
    let owned: Vec<HybridExample> = examples
        .iter()
        .zip(cot_only)
        .map(|(e, &c)| if c { e.cot_only() } else { (*e).clone() })
        .collect();
    let teachers: Vec<&Tokenized> = owned.iter().map(|e| &e.teacher).collect();
    let teacher = collate(&teachers, tokens, true).teacher;
    let k_max = owned.iter().map(|e| e.runs.len()).max().unwrap_or(0);
    let mut chunks = Vec::with_capacity(k_max + 1);
    let mut runs = vec![vec![0; b]; k_max];
    let mut bot = vec![vec![0; b]; k_max];
    let mut final_chunk = vec![0; b];
    let mut distill = vec![0; b];
    for i in 0..=k_max {
        // Per row: the chunk's ids and, per position, whether its target counts.
        let mut rows: Vec<(Vec<u32>, Vec<bool>)> = Vec::with_capacity(b);
        for (r, e) in owned.iter().enumerate() {
            let k = e.runs.len();
            // Inputs, each with whether its prediction is trained (position c - 1 predicts input
            // c); the question and the controller's tokens are not.
            let mut row: Vec<(u32, bool)> = Vec::new();
            if i > k {
                rows.push((Vec::new(), Vec::new()));
                continue;
            }
            if i == 0 {
                row.extend(e.teacher.question.iter().map(|&id| (id, false)));
            } else {
                row.push((tokens.eot, false));
            }
            row.extend(e.chunks[i].iter().map(|&id| (id, true)));
            if i == k {
                final_chunk[r] = i;
                distill[r] = row.len() + e.teacher.pre_answer;
                row.extend(e.teacher.answer.iter().map(|&id| (id, true)));
            } else {
                runs[i][r] = e.runs[i];
                bot[i][r] = row.len();
                row.push((tokens.bot, false));
            }
            let (ids, counted) = row.into_iter().unzip();
            rows.push((ids, counted));
        }
        chunks.push(chunk_grid(&rows, i, &owned, tokens));
    }
    HybridBatch {
        teacher,
        chunks,
        runs,
        bot,
        final_chunk,
        distill,
        size: b,
    }
}

/// The grids of chunk `i`: position `c` predicts input `c + 1` when that input counts; the last
/// position of a row's final chunk predicts EOS.
fn chunk_grid(
    rows: &[(Vec<u32>, Vec<bool>)],
    i: usize,
    owned: &[HybridExample],
    tokens: &SpecialTokens,
) -> SeqBatch {
    let b = rows.len();
    let s = rows
        .iter()
        .map(|(ids, _)| ids.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let mut ids = Grid::filled(b, s, i64::from(tokens.pad));
    let mut mask = Grid::filled(b, s, 0);
    let mut targets = Grid::filled(b, s, 0);
    let mut weights = Grid::filled(b, s, 0);
    for (r, (row, counted)) in rows.iter().enumerate() {
        let last_chunk = i == owned[r].runs.len();
        for (c, &id) in row.iter().enumerate() {
            ids.set(r, c, i64::from(id));
            mask.set(r, c, 1);
            match row.get(c + 1) {
                Some(&next) if counted[c + 1] => {
                    targets.set(r, c, i64::from(next));
                    weights.set(r, c, 1);
                }
                None if last_chunk => {
                    targets.set(r, c, i64::from(tokens.eos));
                    weights.set(r, c, 1);
                }
                _ => {}
            }
        }
    }
    SeqBatch {
        ids,
        mask,
        targets,
        weights,
        distill: Vec::new(),
    }
}

/// Which rows of an epoch's order train as pure CoT: each with probability `ratio`, drawn from
/// `seed` and the epoch.
pub fn cot_only_flags(n: usize, ratio: f64, seed: u64, epoch: usize) -> Vec<bool> {
    let mut rng = SplitMix64::with_stream(seed, 0xC0DE ^ epoch as u64);
    (0..n)
        .map(|_| ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < ratio)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use latent_datasets::answer::GoldAnswer;

    #[test]
    fn wavefront_layout() {
        let t = SpecialTokens::assign(100, None, 3);
        let teacher = |q: &[u32], cot: &[u32]| Tokenized {
            question_text: String::new(),
            question: q.to_vec(),
            cot: cot.to_vec(),
            answer: vec![30, 31, 32],
            pre_answer: 1,
            gold: GoldAnswer::parse("1").unwrap(),
        };
        // Row 0: Q=[10,11], E0=[20], 2 thoughts, E1=[21]. Row 1: Q=[12], E0=[22,23], no run.
        let a = HybridExample {
            teacher: teacher(&[10, 11], &[20, 40, 21]),
            chunks: vec![vec![20], vec![21]],
            runs: vec![2],
        };
        let b = HybridExample {
            teacher: teacher(&[12], &[22, 23]),
            chunks: vec![vec![22, 23]],
            runs: vec![],
        };
        let batch = collate_hybrid(&[&a, &b], &[false, false], &t);
        let (bot, eot, pad) = (101, 102, 100);
        let c0 = &batch.chunks[0];
        assert_eq!(
            c0.ids.data,
            vec![10, 11, 20, bot, pad, pad, 12, 22, 23, 30, 31, 32]
        );
        // Row 0: 11 predicts 20; 20 predicts <bot>: not trained. Row 1: predicts 22 23 30 31 32 EOS.
        assert_eq!(c0.weights.data, vec![0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
        assert_eq!(&c0.targets.data[6..], &[22, 23, 30, 31, 32, 3]);
        let c1 = &batch.chunks[1];
        assert_eq!(
            c1.ids.data,
            vec![eot, 21, 30, 31, 32, pad, pad, pad, pad, pad]
        );
        assert_eq!(c1.targets.data[..5], [21, 30, 31, 32, 3]);
        assert_eq!(c1.weights.data, vec![1, 1, 1, 1, 1, 0, 0, 0, 0, 0]);
        assert_eq!(
            (batch.runs.clone(), batch.bot.clone()),
            (vec![vec![2, 0]], vec![vec![3, 0]])
        );
        assert_eq!(
            (batch.final_chunk.clone(), batch.distill.clone()),
            (vec![1, 0], vec![3, 4])
        );
        // Pure CoT: one chunk, the whole CoT explicit.
        let cot = collate_hybrid(&[&a], &[true], &t);
        assert_eq!(cot.chunks.len(), 1);
        assert_eq!(cot.chunks[0].ids.data, vec![10, 11, 20, 40, 21, 30, 31, 32]);
        assert_eq!(cot.distill, vec![6]);
        assert_eq!(cot.teacher.ids, cot.chunks[0].ids);
    }
}
