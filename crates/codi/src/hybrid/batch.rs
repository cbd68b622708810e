//! Phase 2 data: hybrid samples tokenized, and collated into the "wavefront" layout the batched
//! student pass runs through one KV cache.
//!
//! A sample's student sequence is `Q ‖ E_0 ‖ <bot> z… <eot> ‖ E_1 ‖ … ‖ E_k ‖ A ‖ EOS` with `k`
//! latent runs and `k + 1` explicit chunks (any may be empty). The batch runs chunk index by chunk
//! index: chunk `i` of row `r` is `[Q if i = 0] [<eot> if i > 0] E_i [A if i = k_r] [<bot> if
//! i < k_r]`, right-padded (rows past their last chunk are all padding); then latent run `i` feeds
//! each row its own number of thoughts (rows with fewer are masked). Padding slots are invalid in
//! the cache and positions count real entries only, so the padding changes nothing. CE covers
//! every explicit CoT token, the answer and EOS (not the question). Samples whose runs follow
//! Phase 1's entropy rule also train the switch predictions the step controller reads: `<bot>`
//! at the position before each run, and inside a run, after every `latents_per_step` thoughts,
//! `<bot>` (another latent step) or `<eot>` (the run ends).
//!
//! Only rows with a latent run go through the student pass: a row without one (an explicit
//! sample, or one drawn for `hybrid_cot_only_ratio`) would repeat the teacher sequence, whose CE
//! the teacher pass already has.

use std::ops::Range;

use burn::prelude::Backend;
use latent_core::train::Shard;
use latent_datasets::rng::SplitMix64;
use serde::{Deserialize, Serialize};

use super::phase1::step_spans;
use super::schema::{HybridFile, Segment, Strategy};
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
    /// Whether the runs were placed by Phase 1's entropy rule: the sample then trains the switch
    /// predictions (`<bot>` before a run and between its steps, `<eot>` at its end).
    pub switch_labels: bool,
    /// Whether the in-run switch predictions (`<bot>` between steps, `<eot>` at the end) are
    /// trained too (with `switch_labels`).
    pub thought_labels: bool,
    /// Thoughts per replaced step (Phase 1's `latents_per_step`).
    pub latents_per_step: usize,
    /// Per run, the teacher position (in `Q ‖ CoT ‖ A`) of the last token of its last replaced
    /// step: the state the `<eot>` after the run is aligned with (`eot_distill`).
    pub run_ends: Vec<usize>,
}

impl HybridExample {
    /// The same sample with every step explicit (the `hybrid_cot_only_ratio` case).
    pub fn cot_only(&self) -> Self {
        Self {
            teacher: self.teacher.clone(),
            chunks: vec![self.teacher.cot.clone()],
            runs: Vec::new(),
            switch_labels: false,
            thought_labels: false,
            latents_per_step: self.latents_per_step,
            run_ends: Vec::new(),
        }
    }

    /// Per thought of run `i` that trains a switch prediction: (thought index, target id). After
    /// every `latents_per_step` thoughts but the last, `<bot>` (another step); after the last,
    /// `<eot>`. Empty without switch labels.
    pub fn thought_targets(&self, i: usize, tokens: &SpecialTokens) -> Vec<(usize, u32)> {
        let n = self.runs[i];
        if !self.switch_labels || !self.thought_labels || n == 0 {
            return Vec::new();
        }
        let k = self.latents_per_step.max(1);
        (1..=n)
            .filter(|j| j % k == 0 || *j == n)
            .map(|j| (j - 1, if j == n { tokens.eot } else { tokens.bot }))
            .collect()
    }
}

/// Which switch predictions entropy-rule samples train.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchLabels {
    /// `<bot>` before each run and, inside a run, `<bot>` / `<eot>` after each step of thoughts.
    #[default]
    All,
    /// `<bot>` before each run only (thought outputs stay free, as in CODI).
    Boundaries,
    /// None (no sample teaches the step controller).
    Off,
}

impl std::str::FromStr for SwitchLabels {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(Self::All),
            "boundaries" => Ok(Self::Boundaries),
            "off" => Ok(Self::Off),
            _ => Err(format!(
                "unknown switch labels {s:?} (all, boundaries, off)"
            )),
        }
    }
}

/// Tokenizes the samples of a hybrid file: the teacher with [`prepare`] (steps as given, none
/// dropped: Phase 1 already dropped the last; joined by the file's step separator), each
/// explicit segment on its own.
pub fn prepare_hybrid(
    file: &HybridFile,
    tokenizer: &tokenizers::Tokenizer,
    prep: &PrepConfig,
    labels: SwitchLabels,
) -> Result<Vec<HybridExample>> {
    let samples = &file.samples;
    let prep = PrepConfig {
        keep_last_step: true,
        step_separator: file.generator.step_separator.clone(),
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
        let (cot, spans) = step_spans(tokenizer, &s.steps, &prep.step_separator)?;
        if cot != teacher.cot {
            return Err(CodiError::Tokenizer(format!(
                "the steps of {:?} do not tokenize to its CoT when joined",
                s.question
            )));
        }
        let mut chunks = vec![Vec::new()];
        let mut runs = Vec::new();
        let mut run_ends = Vec::new();
        for seg in &s.segments {
            match seg {
                Segment::Explicit { text, .. } => chunks
                    .last_mut()
                    .expect("a chunk")
                    .extend(encode(tokenizer, text)?),
                Segment::Latent { count, replaces } => {
                    runs.push(*count);
                    let last = *replaces.last().expect("a latent segment replaces a step");
                    run_ends.push(teacher.question.len() + spans[last].end - 1);
                    chunks.push(Vec::new());
                }
            }
        }
        out.push(HybridExample {
            teacher,
            chunks,
            runs,
            run_ends,
            switch_labels: s.strategy == Strategy::Entropy && labels != SwitchLabels::Off,
            thought_labels: labels == SwitchLabels::All,
            latents_per_step: file.generator.latents_per_step,
        });
    }
    if out.is_empty() {
        return Err(CodiError::Empty("the hybrid training samples".into()));
    }
    Ok(out)
}

/// One Phase 2 micro-batch. The teacher covers every row; the student fields cover the rows
/// `student_rows` (those with a latent run), indexed `r` in that order.
#[derive(Debug, Clone, PartialEq)]
pub struct HybridBatch {
    /// The explicit sequences `Q ‖ CoT ‖ A` of every row (reference CE and distillation targets).
    pub teacher: SeqBatch,
    /// The teacher rows that have a student pass, in student-row order.
    pub student_rows: Vec<usize>,
    /// Student chunk `i` of every student row, `[b, s_i]` (ids, mask, targets, weights).
    pub chunks: Vec<SeqBatch>,
    /// `runs[i][r]`: thoughts of row `r` after chunk `i` (0: none).
    pub runs: Vec<Vec<usize>>,
    /// `thought_targets[i][r]`: (thought index, target id) of run `i` of row `r` trained as
    /// switch predictions.
    pub thought_targets: Vec<Vec<Vec<(usize, u32)>>>,
    /// `bot[i][r]`: position of `<bot>` in chunk `i` of row `r` (0 where the row has no run).
    pub bot: Vec<Vec<usize>>,
    /// Per row, the chunk holding the answer.
    pub final_chunk: Vec<usize>,
    /// Per row, the pre-answer position inside its final chunk.
    pub distill: Vec<usize>,
    /// `eot_teacher[i][r]`: for a row whose run `i - 1` ends with the `<eot>` opening chunk `i`,
    /// the teacher position (in its own row) it is aligned with.
    pub eot_teacher: Vec<Vec<Option<usize>>>,
    /// Student rows.
    pub size: usize,
    /// What the batch was collated from, so that a data-parallel shard is collated afresh.
    pub source: HybridSource,
}

/// The inputs of [`collate_hybrid`], kept with its batch.
#[derive(Debug, Clone, PartialEq)]
pub struct HybridSource {
    /// The examples, one per teacher row.
    pub examples: Vec<HybridExample>,
    /// Their `cot_only` flags.
    pub cot_only: Vec<bool>,
    /// The special tokens.
    pub tokens: SpecialTokens,
}

/// The examples `range` (teacher rows), collated alone; `device` is unused (a batch lives on the
/// host until the loss uploads it).
impl<B: Backend> Shard<B> for HybridBatch {
    fn units(&self) -> usize {
        self.source.examples.len()
    }

    fn shard(&self, range: Range<usize>, _device: &B::Device) -> latent_core::Result<Self> {
        let s = &self.source;
        if range.start >= range.end || range.end > s.examples.len() {
            return Err(latent_core::CoreError::Shape(format!(
                "shard rows {range:?} of a Phase 2 batch of {} examples",
                s.examples.len()
            )));
        }
        let rows: Vec<&HybridExample> = s.examples[range.clone()].iter().collect();
        Ok(collate_hybrid(&rows, &s.cot_only[range], &s.tokens))
    }
}

/// Collates hybrid examples; `cot_only[r]` trains row `r` as pure explicit CoT (teacher only).
pub fn collate_hybrid(
    examples: &[&HybridExample],
    cot_only: &[bool],
    tokens: &SpecialTokens,
) -> HybridBatch {
    let teachers: Vec<&Tokenized> = examples.iter().map(|e| &e.teacher).collect();
    let teacher = collate(&teachers, tokens, true).teacher;
    let student_rows: Vec<usize> = (0..examples.len())
        .filter(|&r| !cot_only[r] && !examples[r].runs.is_empty())
        .collect();
    let owned: Vec<&HybridExample> = student_rows.iter().map(|&r| examples[r]).collect();
    let b = owned.len();
    let k_max = owned.iter().map(|e| e.runs.len()).max().unwrap_or(0);
    let mut chunks = Vec::with_capacity(k_max + 1);
    let mut runs = vec![vec![0; b]; k_max];
    let mut thought_targets = vec![vec![Vec::new(); b]; k_max];
    let mut bot = vec![vec![0; b]; k_max];
    let mut final_chunk = vec![0; b];
    let mut distill = vec![0; b];
    let mut eot_teacher = vec![vec![None; b]; k_max + 1];
    for i in 0..=k_max {
        if b == 0 {
            break;
        }
        // Per row: the chunk's ids and, per position, whether its target counts.
        let mut rows: Vec<(Vec<u32>, Vec<bool>)> = Vec::with_capacity(b);
        for (r, e) in owned.iter().enumerate() {
            let k = e.runs.len();
            // Inputs, each with whether its prediction is trained (position c - 1 predicts input
            // c); the question and `<eot>` are not, `<bot>` only with switch labels.
            let mut row: Vec<(u32, bool)> = Vec::new();
            if i > k {
                rows.push((Vec::new(), Vec::new()));
                continue;
            }
            if i == 0 {
                row.extend(e.teacher.question.iter().map(|&id| (id, false)));
            } else {
                row.push((tokens.eot, false));
                eot_teacher[i][r] = e.run_ends.get(i - 1).copied();
            }
            row.extend(e.chunks[i].iter().map(|&id| (id, true)));
            if i == k {
                final_chunk[r] = i;
                distill[r] = row.len() + e.teacher.pre_answer;
                row.extend(e.teacher.answer.iter().map(|&id| (id, true)));
            } else {
                runs[i][r] = e.runs[i];
                thought_targets[i][r] = e.thought_targets(i, tokens);
                bot[i][r] = row.len();
                row.push((tokens.bot, e.switch_labels));
            }
            let (ids, counted) = row.into_iter().unzip();
            rows.push((ids, counted));
        }
        chunks.push(chunk_grid(&rows, i, &owned, tokens));
    }
    HybridBatch {
        teacher,
        student_rows,
        chunks,
        runs,
        thought_targets,
        bot,
        final_chunk,
        distill,
        eot_teacher,
        size: b,
        source: HybridSource {
            examples: examples.iter().map(|&e| e.clone()).collect(),
            cot_only: cot_only.to_vec(),
            tokens: *tokens,
        },
    }
}

/// The grids of chunk `i`: position `c` predicts input `c + 1` when that input counts; the last
/// position of a row's final chunk predicts EOS.
fn chunk_grid(
    rows: &[(Vec<u32>, Vec<bool>)],
    i: usize,
    owned: &[&HybridExample],
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
        let example = |q: &[u32], cot: &[u32], chunks: Vec<Vec<u32>>, runs, labels| HybridExample {
            teacher: teacher(q, cot),
            chunks,
            runs,
            switch_labels: labels,
            thought_labels: labels,
            latents_per_step: 2,
            run_ends: vec![2; 1],
        };
        // Row 0: Q=[10,11], E0=[20], 2 thoughts, E1=[21]. Row 1: no run (teacher only). Row 2:
        // Q=[12], E0 empty, 4 thoughts (two steps), E1=[22], with switch labels.
        let a = example(
            &[10, 11],
            &[20, 40, 21],
            vec![vec![20], vec![21]],
            vec![2],
            false,
        );
        let b = example(&[12], &[22, 23], vec![vec![22, 23]], vec![], false);
        let c = example(&[12], &[41, 22], vec![vec![], vec![22]], vec![4], true);
        let batch = collate_hybrid(&[&a, &b, &c], &[false; 3], &t);
        let (bot, eot, pad) = (101, 102, 100);
        assert_eq!((batch.student_rows.clone(), batch.size), (vec![0, 2], 2));
        assert_eq!(batch.teacher.ids.rows, 3);
        let c0 = &batch.chunks[0];
        assert_eq!(c0.ids.data, vec![10, 11, 20, bot, 12, bot, pad, pad]);
        // Row 0: 11 predicts 20; 20 predicts <bot>: not trained without labels. Row 2: the
        // question's last token predicts <bot>.
        assert_eq!(c0.weights.data, vec![0, 1, 0, 0, 1, 0, 0, 0]);
        assert_eq!((c0.targets.data[1], c0.targets.data[4]), (20, bot));
        let c1 = &batch.chunks[1];
        assert_eq!(c1.ids.data, vec![eot, 21, 30, 31, 32, eot, 22, 30, 31, 32]);
        assert_eq!(c1.targets.data[..5], [21, 30, 31, 32, 3]);
        assert_eq!(c1.weights.data, vec![1; 10]);
        assert_eq!(
            (batch.runs.clone(), batch.bot.clone()),
            (vec![vec![2, 4]], vec![vec![3, 1]])
        );
        // Row 2's run: after thought 2 another step (<bot>), after thought 4 the end (<eot>).
        assert_eq!(
            batch.thought_targets,
            vec![vec![vec![], vec![(1, t.bot), (3, t.eot)]]]
        );
        assert_eq!(
            (batch.final_chunk.clone(), batch.distill.clone()),
            (vec![1, 1], vec![3, 3])
        );
        // Both runs' <eot> (opening chunk 1) align with teacher position 2.
        assert_eq!(
            batch.eot_teacher,
            vec![vec![None, None], vec![Some(2), Some(2)]]
        );
        // A data-parallel shard is the batch of its rows alone, their cot_only flags included.
        let flags = [false, true, false];
        let flagged = collate_hybrid(&[&a, &b, &c], &flags, &t);
        let shard = |r| Shard::<latent_core::CpuBackend>::shard(&flagged, r, &Default::default());
        assert_eq!(
            shard(1..3).unwrap(),
            collate_hybrid(&[&b, &c], &flags[1..], &t)
        );
        assert_eq!(shard(0..1).unwrap(), collate_hybrid(&[&a], &flags[..1], &t));
        assert_eq!(Shard::<latent_core::CpuBackend>::units(&flagged), 3);
        assert!(shard(3..4).is_err());
        // Pure CoT: teacher only.
        let cot = collate_hybrid(&[&a], &[true], &t);
        assert_eq!((cot.size, cot.chunks.len()), (0, 0));
        assert_eq!(cot.teacher.ids.data, vec![10, 11, 20, 40, 21, 30, 31, 32]);
    }
}
