//! Collating tokenized examples into the padded host arrays of a training micro-batch.
//!
//! - Teacher: `Q ‖ CoT ‖ A ‖ EOS`, right-padded; targets are the next ids, counted from the first
//!   CoT (or answer) token on, so only the question is masked.
//! - Student question: `Q ‖ <bot>`, left-padded (the last column is `<bot>` in every row).
//! - Student decoder: `<eot> ‖ A` predicting `A ‖ EOS`, right-padded.
//!
//! The distilled positions are the pre-answer token in the teacher sequence and in the decoder.
//!
//! A batch splits into data-parallel shards ([`Shard`]): the shard of rows `a..b` is exactly the
//! batch [`collate`] makes of those examples alone (their rows, with the padding columns no row
//! of the shard uses dropped).

use std::ops::Range;

use burn::prelude::Backend;
use latent_core::train::Shard;

use crate::data::Tokenized;
use crate::tokens::SpecialTokens;

/// A rectangular `[rows, cols]` array of ids (or 0/1 flags), row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    /// Values, `rows × cols`.
    pub data: Vec<i64>,
    /// Rows (batch).
    pub rows: usize,
    /// Columns (positions).
    pub cols: usize,
}

impl Grid {
    pub(crate) fn filled(rows: usize, cols: usize, value: i64) -> Self {
        Self {
            data: vec![value; rows * cols],
            rows,
            cols,
        }
    }

    pub(crate) fn set(&mut self, r: usize, c: usize, value: i64) {
        self.data[r * self.cols + c] = value;
    }

    /// The value at row `r`, column `c`.
    pub fn get(&self, r: usize, c: usize) -> i64 {
        self.data[r * self.cols + c]
    }

    /// Rows `rows`, columns `cols`.
    fn window(&self, rows: Range<usize>, cols: Range<usize>) -> Self {
        let data = rows
            .clone()
            .flat_map(|r| self.data[r * self.cols + cols.start..r * self.cols + cols.end].to_vec())
            .collect();
        Self {
            data,
            rows: rows.len(),
            cols: cols.len(),
        }
    }
}

/// The columns of `mask`'s rows `rows` holding a real token: from the first to the last used
/// column (at least one column, as [`collate`] makes).
fn used_columns(mask: &Grid, rows: Range<usize>) -> Range<usize> {
    let used = rows.flat_map(|r| (0..mask.cols).filter(move |&c| mask.get(r, c) != 0));
    let (start, end) = used.fold((usize::MAX, 0), |(lo, hi), c| (lo.min(c), hi.max(c + 1)));
    if start < end {
        start..end
    } else {
        0..1.min(mask.cols)
    }
}

impl SeqBatch {
    /// Rows `rows` of a right-padded batch, without the padding columns they do not use.
    fn rows(&self, rows: Range<usize>) -> Self {
        let cols = 0..used_columns(&self.mask, rows.clone()).end;
        Self {
            ids: self.ids.window(rows.clone(), cols.clone()),
            mask: self.mask.window(rows.clone(), cols.clone()),
            targets: self.targets.window(rows.clone(), cols.clone()),
            weights: self.weights.window(rows.clone(), cols),
            distill: self.distill[rows].to_vec(),
        }
    }
}

/// A sequence batch: ids, attention mask, next-token targets and which targets count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqBatch {
    /// Input ids `[b, s]`.
    pub ids: Grid,
    /// 1 = real token, 0 = padding `[b, s]`.
    pub mask: Grid,
    /// Target of each position `[b, s]` (0 where not counted).
    pub targets: Grid,
    /// 1 where the target counts in the loss `[b, s]`.
    pub weights: Grid,
    /// Per row, the position whose hidden states are distilled.
    pub distill: Vec<usize>,
}

/// One CODI micro-batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodiBatch {
    /// The teacher sequences (or, for the baselines, the only sequences).
    pub teacher: SeqBatch,
    /// `Q ‖ <bot>`, left-padded: ids and mask `[b, q]`.
    pub question: (Grid, Grid),
    /// `<eot> ‖ A` → `A ‖ EOS`, right-padded.
    pub decoder: SeqBatch,
    /// Question length of each row (the teacher's first `question_lens[i]` tokens are `Q`).
    pub question_lens: Vec<usize>,
    /// Number of examples.
    pub size: usize,
}

/// The rows of a range of examples, as [`collate`] would make of them alone; `device` is unused
/// (a batch lives on the host until the loss uploads it).
impl<B: Backend> Shard<B> for CodiBatch {
    fn units(&self) -> usize {
        self.size
    }

    fn shard(&self, range: Range<usize>, _device: &B::Device) -> latent_core::Result<Self> {
        if range.start >= range.end || range.end > self.size {
            return Err(latent_core::CoreError::Shape(format!(
                "shard rows {range:?} of a CODI batch of {} examples",
                self.size
            )));
        }
        let (ids, mask) = &self.question;
        // The question is left-padded: keep the columns from the first one a shard row uses.
        let q = used_columns(mask, range.clone()).start..mask.cols;
        Ok(Self {
            teacher: self.teacher.rows(range.clone()),
            question: (
                ids.window(range.clone(), q.clone()),
                mask.window(range.clone(), q),
            ),
            decoder: self.decoder.rows(range.clone()),
            question_lens: self.question_lens[range.clone()].to_vec(),
            size: range.len(),
        })
    }
}

/// Right-padded sequences of `parts[i]` concatenated; targets from `counted_from[i]` on.
fn right_padded(
    seqs: &[Vec<u32>],
    counted_from: &[usize],
    distill: Vec<usize>,
    pad: u32,
    eos: u32,
) -> SeqBatch {
    let b = seqs.len();
    let s = seqs.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let mut ids = Grid::filled(b, s, i64::from(pad));
    let mut mask = Grid::filled(b, s, 0);
    let mut targets = Grid::filled(b, s, 0);
    let mut weights = Grid::filled(b, s, 0);
    for (r, seq) in seqs.iter().enumerate() {
        for (c, &id) in seq.iter().enumerate() {
            ids.set(r, c, i64::from(id));
            mask.set(r, c, 1);
            // Position c predicts seq[c + 1]; the last real position predicts EOS.
            let next = seq.get(c + 1).copied().unwrap_or(eos);
            targets.set(r, c, i64::from(next));
            if c + 1 >= counted_from[r] {
                weights.set(r, c, 1);
            }
        }
    }
    SeqBatch {
        ids,
        mask,
        targets,
        weights,
        distill,
    }
}

/// Collates `examples`. `with_cot = false` builds No-CoT teacher sequences `Q ‖ A ‖ EOS`.
pub fn collate(examples: &[&Tokenized], tokens: &SpecialTokens, with_cot: bool) -> CodiBatch {
    let b = examples.len();
    let mut teacher = Vec::with_capacity(b);
    let mut counted = Vec::with_capacity(b);
    let mut teacher_distill = Vec::with_capacity(b);
    for e in examples {
        let mut seq = e.question.clone();
        if with_cot {
            seq.extend(&e.cot);
        }
        teacher_distill.push(seq.len() + e.pre_answer);
        seq.extend(&e.answer);
        counted.push(e.question.len());
        teacher.push(seq);
    }
    let teacher = right_padded(&teacher, &counted, teacher_distill, tokens.pad, tokens.eos);

    let q = examples
        .iter()
        .map(|e| e.question.len() + 1)
        .max()
        .unwrap_or(1);
    let mut q_ids = Grid::filled(b, q, i64::from(tokens.pad));
    let mut q_mask = Grid::filled(b, q, 0);
    for (r, e) in examples.iter().enumerate() {
        let start = q - e.question.len() - 1;
        for (c, &id) in e.question.iter().chain([&tokens.bot]).enumerate() {
            q_ids.set(r, start + c, i64::from(id));
            q_mask.set(r, start + c, 1);
        }
    }

    let decoder: Vec<Vec<u32>> = examples
        .iter()
        .map(|e| {
            std::iter::once(tokens.eot)
                .chain(e.answer.iter().copied())
                .collect()
        })
        .collect();
    let decoder_distill = examples.iter().map(|e| 1 + e.pre_answer).collect();
    let decoder = right_padded(
        &decoder,
        &vec![1; b],
        decoder_distill,
        tokens.pad,
        tokens.eos,
    );
    CodiBatch {
        teacher,
        question: (q_ids, q_mask),
        decoder,
        question_lens: examples.iter().map(|e| e.question.len()).collect(),
        size: b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latent_datasets::answer::GoldAnswer;

    fn example(q: &[u32], cot: &[u32], answer: &[u32], pre: usize) -> Tokenized {
        Tokenized {
            question_text: String::new(),
            question: q.to_vec(),
            cot: cot.to_vec(),
            answer: answer.to_vec(),
            pre_answer: pre,
            gold: GoldAnswer::parse("1").unwrap(),
        }
    }

    #[test]
    fn layouts_masks_and_distilled_positions() {
        let t = SpecialTokens::assign(100, None, 3);
        let a = example(&[10, 11, 12], &[20, 21], &[30, 31, 32], 1);
        let b = example(&[13], &[22], &[33, 34], 0);
        let batch = collate(&[&a, &b], &t, true);
        // Teacher row 0: 10 11 12 20 21 30 31 32; targets counted from the first CoT token.
        let tr = &batch.teacher;
        assert_eq!(tr.ids.cols, 8);
        assert_eq!(&tr.ids.data[..8], &[10, 11, 12, 20, 21, 30, 31, 32]);
        assert_eq!(&tr.targets.data[..8], &[11, 12, 20, 21, 30, 31, 32, 3]);
        assert_eq!(&tr.weights.data[..8], &[0, 0, 1, 1, 1, 1, 1, 1]);
        assert_eq!(tr.distill, vec![6, 2]);
        // Row 1 is right-padded with pad = 100.
        assert_eq!(&tr.ids.data[8..], &[13, 22, 33, 34, 100, 100, 100, 100]);
        assert_eq!(&tr.mask.data[8..], &[1, 1, 1, 1, 0, 0, 0, 0]);
        assert_eq!(&tr.weights.data[8..], &[1, 1, 1, 1, 0, 0, 0, 0]);
        // Question: left-padded, ends with <bot> = 101.
        let (qi, qm) = &batch.question;
        assert_eq!(qi.data, vec![10, 11, 12, 101, 100, 100, 13, 101]);
        assert_eq!(qm.data, vec![1, 1, 1, 1, 0, 0, 1, 1]);
        // Decoder: <eot> = 102, then the answer; targets end with EOS.
        let d = &batch.decoder;
        assert_eq!(d.ids.data, vec![102, 30, 31, 32, 102, 33, 34, 100]);
        assert_eq!(d.targets.data[..4], [30, 31, 32, 3]);
        assert_eq!(d.weights.data, vec![1, 1, 1, 1, 1, 1, 1, 0]);
        assert_eq!(d.distill, vec![2, 1]);
        // No-CoT teacher: Q ‖ A.
        let plain = collate(&[&a], &t, false);
        assert_eq!(plain.teacher.ids.data, vec![10, 11, 12, 30, 31, 32]);
        assert_eq!(plain.teacher.distill, vec![4]);
    }

    #[test]
    fn a_shard_is_the_batch_of_its_examples_alone() {
        type B = latent_core::CpuBackend;
        let t = SpecialTokens::assign(100, None, 3);
        let long = example(&[10, 11, 12, 14], &[20, 21, 23], &[30, 31, 32], 1);
        let short = example(&[13], &[22], &[33], 0);
        let mid = example(&[15, 16], &[24, 25], &[34, 35], 1);
        let all = collate(&[&long, &short, &mid], &t, true);
        let device = Default::default();
        for (range, rows) in [
            (0..1, vec![&long]),
            (1..3, vec![&short, &mid]),
            (1..2, vec![&short]),
            (0..3, vec![&long, &short, &mid]),
        ] {
            let shard = Shard::<B>::shard(&all, range.clone(), &device).unwrap();
            assert_eq!(shard, collate(&rows, &t, true), "rows {range:?}");
        }
        assert_eq!(Shard::<B>::units(&all), 3);
        assert!(Shard::<B>::shard(&all, 2..4, &device).is_err());
    }
}
