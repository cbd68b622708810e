//! The Phase 2 loss: `L = CE(student) + β·KD + γ·CE(teacher)`, with the same model, special ids,
//! projection and forward as plain CODI.
//!
//! The student pass runs the rows of a [`HybridBatch`] that have a latent run chunk by chunk
//! through one KV cache (see [`crate::hybrid::batch`]); each latent run starts from the hidden
//! state at its `<bot>` and feeds projected hidden states back, gradients flowing through the
//! whole chain. Student CE is the token mean over those rows (explicit CoT after and between
//! runs, the answer, EOS and the switch predictions); KD compares every hidden-state layer at the
//! token before the answer with the teacher's (the explicit sequence) over the same rows, exactly
//! as in [`crate::loss`]. Rows without a run add only their teacher CE. On a batch whose rows are
//! all a single run of `num_latent` thoughts after the question, without switch labels, this is
//! the CODI loss ([`crate::loss::codi_loss`]; checked by a test).

use burn::prelude::*;
use latent_core::infer::KvCache;
use latent_core::LmInput;

use super::batch::HybridBatch;
use crate::batch::{Grid, SeqBatch};
use crate::loss::{
    combine_terms, int_tensor, layer_distance, masked_ce, masked_ce_sum, select_positions,
    teacher_forward, CodiTerms, LossConfig,
};
use crate::model::CodiModel;
use crate::Result;

/// What the student pass yields.
#[derive(Debug, Clone)]
pub struct StudentPass<B: Backend> {
    /// Summed CE over the trained positions, `[1]`.
    pub ce_sum: Tensor<B, 1>,
    /// Trained positions.
    pub ce_count: usize,
    /// Per hidden-state layer, the states at each row's pre-answer position, `[b, D]` in row order.
    pub distill: Vec<Tensor<B, 2>>,
    /// Per hidden-state layer, the states at each `<eot>` after a run, `[n, D]` (empty unless
    /// asked for), and the (teacher row, teacher position) each is aligned with.
    pub eot: (Vec<Tensor<B, 2>>, Vec<(usize, usize)>),
}

/// `[b, n]` Int tensor of 0/1 from host flags.
fn flags<B: Backend>(values: &[bool], device: &B::Device) -> Tensor<B, 2, Int> {
    let data: Vec<i64> = values.iter().map(|&v| i64::from(v)).collect();
    Tensor::from_data(TensorData::new(data, [values.len(), 1]), device)
}

/// The switch targets of thought `j` of one run (`[b, 1]` targets and weights), if any row has
/// one.
fn thought_grid(targets: &[Vec<(usize, u32)>], j: usize) -> Option<SeqBatch> {
    let b = targets.len();
    let mut grid = SeqBatch {
        ids: Grid::filled(b, 1, 0),
        mask: Grid::filled(b, 1, 1),
        targets: Grid::filled(b, 1, 0),
        weights: Grid::filled(b, 1, 0),
        distill: Vec::new(),
    };
    let mut any = false;
    for (r, row) in targets.iter().enumerate() {
        if let Some(&(_, id)) = row.iter().find(|(at, _)| *at == j) {
            grid.targets.set(r, 0, i64::from(id));
            grid.weights.set(r, 0, 1);
            any = true;
        }
    }
    any.then_some(grid)
}

/// The batched student pass of the student rows of `batch` (at least one).
pub fn student_pass<B: Backend>(
    model: &CodiModel<B>,
    batch: &HybridBatch,
    eot_states: bool,
) -> Result<StudentPass<B>> {
    let device = model.lm.device();
    let b = batch.size;
    let capacity = batch.chunks.iter().map(|c| c.ids.cols).sum::<usize>()
        + batch
            .runs
            .iter()
            .map(|r| r.iter().copied().max().unwrap_or(0))
            .sum::<usize>();
    let dtype = model.lm.embed_tokens.weight.val().dtype();
    let mut cache = KvCache::new(model.lm.config(), b, capacity, dtype, &device);
    let mut ce_sum: Option<Tensor<B, 1>> = None;
    let mut ce_count = 0;
    // Per layer, the pre-answer states gathered chunk by chunk, and the rows they belong to.
    let mut gathered: Vec<Vec<Tensor<B, 2>>> = Vec::new();
    let mut order: Vec<usize> = Vec::with_capacity(b);
    let mut eot_layers: Vec<Vec<Tensor<B, 2>>> = Vec::new();
    let mut eot_pairs: Vec<(usize, usize)> = Vec::new();
    for (i, chunk) in batch.chunks.iter().enumerate() {
        let finals: Vec<usize> = (0..b).filter(|&r| batch.final_chunk[r] == i).collect();
        let eots: Vec<(usize, usize)> = if eot_states {
            (0..b)
                .filter_map(|r| batch.eot_teacher[i][r].map(|p| (r, p)))
                .collect()
        } else {
            Vec::new()
        };
        let input = LmInput::ids(int_tensor(&chunk.ids, &device))
            .attention_mask(int_tensor(&chunk.mask, &device))
            .output_hidden_states(!finals.is_empty() || !eots.is_empty());
        let out = model.lm.forward_cached(input, &mut cache)?;
        if !eots.is_empty() {
            // `<eot>` opens the chunk: position 0 of each such row.
            let index = Tensor::<B, 1, Int>::from_data(
                TensorData::new(
                    eots.iter().map(|&(r, _)| r as i64).collect::<Vec<_>>(),
                    [eots.len()],
                ),
                &device,
            );
            eot_layers.resize_with(out.hidden_states.len(), Vec::new);
            for (layer, h) in out.hidden_states.iter().enumerate() {
                let rows = h.clone().select(0, index.clone());
                eot_layers[layer].push(select_positions(rows, &vec![0; eots.len()]));
            }
            eot_pairs.extend(eots.iter().map(|&(r, p)| (batch.student_rows[r], p)));
        }
        let (sum, count) = masked_ce_sum(out.logits, chunk);
        ce_sum = Some(match ce_sum {
            Some(acc) => acc + sum,
            None => sum,
        });
        ce_count += count;
        if !finals.is_empty() {
            let index = Tensor::<B, 1, Int>::from_data(
                TensorData::new(
                    finals.iter().map(|&r| r as i64).collect::<Vec<_>>(),
                    [finals.len()],
                ),
                &device,
            );
            let positions: Vec<usize> = finals.iter().map(|&r| batch.distill[r]).collect();
            gathered.resize_with(out.hidden_states.len(), Vec::new);
            for (layer, h) in out.hidden_states.into_iter().enumerate() {
                let rows = h.select(0, index.clone());
                gathered[layer].push(select_positions(rows, &positions));
            }
            order.extend(finals);
        }
        let Some(runs) = batch.runs.get(i) else {
            continue;
        };
        let longest = runs.iter().copied().max().unwrap_or(0);
        if longest == 0 {
            continue;
        }
        let mut last = select_positions(out.last_hidden, &batch.bot[i]).unsqueeze_dim::<3>(1);
        for j in 0..longest {
            let active: Vec<bool> = runs.iter().map(|&n| j < n).collect();
            let input =
                LmInput::embeds(model.thought(last)).attention_mask(flags(&active, &device));
            let out = model.lm.forward_cached(input, &mut cache)?;
            if let Some(targets) = thought_grid(&batch.thought_targets[i], j) {
                let (sum, count) = masked_ce_sum(out.logits, &targets);
                ce_sum = Some(ce_sum.expect("a chunk before a run") + sum);
                ce_count += count;
            }
            last = out.last_hidden;
        }
    }
    // Back to row order.
    let mut inverse = vec![0i64; b];
    for (k, &r) in order.iter().enumerate() {
        inverse[r] = k as i64;
    }
    let inverse = Tensor::<B, 1, Int>::from_data(TensorData::new(inverse, [b]), &device);
    let distill = gathered
        .into_iter()
        .map(|parts| Tensor::cat(parts, 0).select(0, inverse.clone()))
        .collect();
    let eot = eot_layers
        .into_iter()
        .map(|parts| Tensor::cat(parts, 0))
        .collect();
    Ok(StudentPass {
        ce_sum: ce_sum.expect("at least one chunk"),
        ce_count,
        distill,
        eot: (eot, eot_pairs),
    })
}

/// The Phase 2 loss terms of one micro-batch.
#[derive(Debug, Clone)]
pub struct HybridTerms<B: Backend> {
    /// The CODI terms; `total` includes `β · kd_eot`.
    pub codi: CodiTerms<B>,
    /// The `<eot>` alignment term (mean over layers; 0 when off or without runs), `[1]`.
    pub kd_eot: Tensor<B, 1>,
}

/// The Phase 2 loss of one micro-batch (`config.num_latent` is unused: the runs say how many
/// thoughts each row feeds). A batch without student rows is its teacher CE alone. With
/// `eot_distill`, each `<eot>` after a run is also distilled, as the pre-answer token, towards the
/// teacher's state at the last token of the step(s) the run replaced ("teacher-aligned positions"
/// of the design), weighted by β like the pre-answer term.
pub fn hybrid_loss<B: Backend>(
    model: &CodiModel<B>,
    batch: &HybridBatch,
    config: &LossConfig,
    eot_distill: bool,
) -> Result<HybridTerms<B>> {
    let teacher = teacher_forward(model, &batch.teacher, true)?;
    let teacher_ce = masked_ce(teacher.logits, &batch.teacher);
    let zero = teacher_ce.zeros_like();
    if batch.size == 0 {
        return Ok(HybridTerms {
            codi: CodiTerms {
                total: teacher_ce.clone() * config.ref_loss_factor,
                student_ce: zero.clone(),
                teacher_ce,
                kd: zero.clone(),
                kd_layers: Vec::new(),
            },
            kd_eot: zero,
        });
    }
    let student = student_pass(model, batch, eot_distill)?;
    let student_ce = student.ce_sum / student.ce_count.max(1) as f64;
    let device = model.lm.device();
    let (eot_states, eot_pairs) = student.eot;
    let kd_eot = if eot_pairs.is_empty() {
        zero
    } else {
        let layers = eot_states.len() as f64;
        let distances: Vec<Tensor<B, 1>> = teacher
            .hidden_states
            .iter()
            .zip(eot_states)
            .map(|(t, s)| {
                let [rows, len, d] = t.dims();
                let flat: Vec<i64> = eot_pairs
                    .iter()
                    .map(|&(r, p)| (r * len + p) as i64)
                    .collect();
                let index = Tensor::<B, 1, Int>::from_data(
                    TensorData::new(flat, [eot_pairs.len()]),
                    &device,
                );
                let t = t.clone().reshape([rows * len, d]).select(0, index).detach();
                layer_distance(s, t, config.distill_loss_type)
            })
            .collect();
        Tensor::cat(distances, 0).sum() / layers
    };
    let rows: Vec<i64> = batch.student_rows.iter().map(|&r| r as i64).collect();
    let rows = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [batch.size]), &device);
    let teacher_states = teacher
        .hidden_states
        .into_iter()
        .map(|h| h.select(0, rows.clone()))
        .collect();
    let teacher_distill: Vec<usize> = batch
        .student_rows
        .iter()
        .map(|&r| batch.teacher.distill[r])
        .collect();
    let mut codi = combine_terms(
        teacher_states,
        &teacher_distill,
        student.distill,
        student_ce,
        teacher_ce,
        config,
    );
    codi.total = codi.total + kd_eot.clone() * config.distill_loss_factor;
    Ok(HybridTerms { codi, kd_eot })
}

#[cfg(test)]
mod tests {
    use burn::tensor::activation::log_softmax;

    use super::*;
    use crate::batch::collate;
    use crate::hybrid::batch::{collate_hybrid, HybridExample};
    use crate::hybrid::testing::tiny_setup;
    use crate::loss::{codi_loss, DistillLoss};
    use latent_core::CpuBackend;

    /// One element of a student sequence: a token or a thought, with the id the prediction made
    /// at its position is trained on (if any).
    enum Elem {
        Tok(u32),
        Thought,
    }

    /// The reference's CE sum and count, per-layer pre-answer states and per-`<eot>` states.
    type Reference<B> = (f64, usize, Vec<Tensor<B, 1>>, Vec<Vec<Tensor<B, 1>>>);

    /// Row-by-row reference without a cache: every thought recomputes the whole prefix, then one
    /// forward over the finished sequence gives the CE sum, its count and the pre-answer states.
    fn reference<B: Backend>(model: &CodiModel<B>, e: &HybridExample) -> Reference<B> {
        let t = model.tokens;
        let mut eot_at: Vec<usize> = Vec::new();
        let mut seq: Vec<Elem> = Vec::new();
        // targets[c]: what position c is trained to predict.
        let mut targets: Vec<Option<u32>> = Vec::new();
        let push = |seq: &mut Vec<Elem>, targets: &mut Vec<Option<u32>>, el, trained| {
            // The previous position predicts this element when it is a trained token.
            if let (Elem::Tok(id), true) = (&el, trained) {
                *targets.last_mut().expect("a previous position") = Some(*id);
            }
            seq.push(el);
            targets.push(None);
        };
        for &id in &e.teacher.question {
            push(&mut seq, &mut targets, Elem::Tok(id), false);
        }
        for (i, chunk) in e.chunks.iter().enumerate() {
            for &id in chunk {
                push(&mut seq, &mut targets, Elem::Tok(id), true);
            }
            if let Some(&n) = e.runs.get(i) {
                push(&mut seq, &mut targets, Elem::Tok(t.bot), e.switch_labels);
                for _ in 0..n {
                    push(&mut seq, &mut targets, Elem::Thought, false);
                }
                for (j, id) in e.thought_targets(i, &t) {
                    let at = seq.len() - n + j;
                    targets[at] = Some(id);
                }
                eot_at.push(seq.len());
                push(&mut seq, &mut targets, Elem::Tok(t.eot), false);
            }
        }
        let distill = seq.len() + e.teacher.pre_answer;
        for &id in &e.teacher.answer {
            push(&mut seq, &mut targets, Elem::Tok(id), true);
        }
        *targets.last_mut().expect("an answer") = Some(t.eos);
        let device = model.lm.device();
        let mut embeds: Vec<Tensor<B, 3>> = Vec::new();
        for el in &seq {
            let x = match el {
                Elem::Tok(id) => model.lm.embed(Tensor::from_data(
                    TensorData::new(vec![i64::from(*id)], [1, 1]),
                    &device,
                )),
                Elem::Thought => {
                    let prefix = Tensor::cat(embeds.clone(), 1);
                    let n = prefix.dims()[1];
                    let h = model
                        .lm
                        .forward(LmInput::embeds(prefix))
                        .unwrap()
                        .last_hidden;
                    let d = h.dims()[2];
                    model.thought(h.slice([0..1, n - 1..n, 0..d]))
                }
            };
            embeds.push(x);
        }
        let out = model
            .lm
            .forward(LmInput::embeds(Tensor::cat(embeds, 1)).output_hidden_states(true))
            .unwrap();
        let logp = log_softmax(out.logits, 2);
        let v = logp.dims()[2];
        let logp: Vec<f32> = logp.into_data().convert::<f32>().into_vec().unwrap();
        let (mut sum, mut count) = (0.0f64, 0);
        for (c, target) in targets.iter().enumerate() {
            if let Some(id) = target {
                sum -= f64::from(logp[c * v + *id as usize]);
                count += 1;
            }
        }
        let at = |p: usize| -> Vec<Tensor<B, 1>> {
            out.hidden_states
                .iter()
                .map(|h| {
                    let d = h.dims()[2];
                    h.clone().slice([0..1, p..p + 1, 0..d]).reshape([d])
                })
                .collect()
        };
        let eots = eot_at.iter().map(|&p| at(p)).collect();
        (sum, count, at(distill), eots)
    }

    fn max_diff<B: Backend>(got: Tensor<B, 1>, want: Tensor<B, 1>) -> f32 {
        let got: Vec<f32> = got.into_data().to_vec().unwrap();
        let want: Vec<f32> = want.into_data().to_vec().unwrap();
        got.iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn batched_student_pass_matches_a_row_by_row_reference() {
        let (model, _, examples) = tiny_setup();
        // Rows of different shapes: no run (teacher only), one run, two runs with empty chunks, a
        // run at the end; with and without switch labels.
        let shaped: Vec<HybridExample> = examples
            .iter()
            .take(6)
            .enumerate()
            .map(|(n, e)| {
                let c = &e.cot;
                let (chunks, runs) = match n % 4 {
                    0 => (vec![c.clone()], vec![]),
                    1 => (vec![c[..3].to_vec(), c[3..].to_vec()], vec![2]),
                    2 => (vec![vec![], c[..5].to_vec(), vec![]], vec![1, 4]),
                    _ => (vec![c[..2].to_vec(), vec![]], vec![4]),
                };
                HybridExample {
                    teacher: e.clone(),
                    run_ends: vec![e.question.len() + n; runs.len()],
                    chunks,
                    runs,
                    switch_labels: n % 2 == 1 || n == 2,
                    thought_labels: true,
                    latents_per_step: 2,
                }
            })
            .collect();
        let refs: Vec<&HybridExample> = shaped.iter().collect();
        let batch = collate_hybrid(&refs, &vec![false; refs.len()], &model.tokens);
        assert_eq!(batch.student_rows, vec![1, 2, 3, 5]);
        let pass = student_pass(&model, &batch, true).unwrap();
        let mut total = 0.0;
        let mut count = 0;
        let mut eots = Vec::new();
        for (r, &row) in batch.student_rows.iter().enumerate() {
            let (sum, n, states, row_eots) = reference(&model, &shaped[row]);
            total += sum;
            count += n;
            eots.push(row_eots);
            assert_eq!(states.len(), pass.distill.len());
            for (layer, (want, got)) in states.into_iter().zip(&pass.distill).enumerate() {
                let d = want.dims()[0];
                let got = got.clone().slice([r..r + 1, 0..d]).reshape([d]);
                let diff = max_diff(got, want);
                assert!(
                    diff < 1e-4,
                    "row {row} layer {layer}: max difference {diff}"
                );
            }
        }
        // The <eot> states, chunk by chunk, row by row, each with its teacher row and position.
        let (eot_states, pairs) = &pass.eot;
        let mut k = 0;
        for i in 1..batch.chunks.len() {
            for (r, &row) in batch.student_rows.iter().enumerate() {
                if batch.eot_teacher[i][r].is_none() {
                    continue;
                }
                assert_eq!(pairs[k], (row, shaped[row].run_ends[i - 1]));
                for (layer, want) in eots[r][i - 1].iter().enumerate() {
                    let d = want.dims()[0];
                    let got = eot_states[layer]
                        .clone()
                        .slice([k..k + 1, 0..d])
                        .reshape([d]);
                    let diff = max_diff(got, want.clone());
                    assert!(
                        diff < 1e-4,
                        "<eot> {k} layer {layer}: max difference {diff}"
                    );
                }
                k += 1;
            }
        }
        assert_eq!(k, 5);
        assert_eq!(pass.ce_count, count);
        let got = pass.ce_sum.into_scalar().elem::<f64>();
        assert!(
            (got - total).abs() < 1e-4 * count as f64,
            "CE sum {got} vs {total}"
        );
    }

    /// The code-path control: on all-latent rows (one run of `num_latent` thoughts right after
    /// the question, no switch labels) the Phase 2 loss is the CODI loss, term by term; rows
    /// without a run then change only the teacher CE.
    #[test]
    fn all_latent_hybrid_loss_is_the_codi_loss() {
        let (model, _, examples) = tiny_setup();
        let num_latent = 3;
        let config = LossConfig {
            num_latent,
            distill_loss_factor: 0.7,
            ref_loss_factor: 1.3,
            distill_loss_type: DistillLoss::SmoothL1,
            reference_masking: false,
        };
        let latent: Vec<HybridExample> = examples
            .iter()
            .map(|e| HybridExample {
                teacher: e.clone(),
                chunks: vec![vec![], vec![]],
                runs: vec![num_latent],
                switch_labels: false,
                thought_labels: true,
                latents_per_step: num_latent,
                run_ends: vec![e.question.len() + e.cot.len() - 1],
            })
            .collect();
        let refs: Vec<&HybridExample> = latent.iter().collect();
        let batch = collate_hybrid(&refs, &vec![false; refs.len()], &model.tokens);
        let hybrid = hybrid_loss(&model, &batch, &config, false).unwrap();
        let aligned = hybrid_loss(&model, &batch, &config, true).unwrap();
        let hybrid = hybrid.codi;
        let teachers: Vec<_> = examples.iter().collect();
        let codi = codi_loss(&model, &collate(&teachers, &model.tokens, true), &config).unwrap();
        let value = |t: &Tensor<CpuBackend, 1>| t.clone().into_scalar().elem::<f64>();
        for (name, h, c) in [
            ("total", &hybrid.total, &codi.total),
            ("student_ce", &hybrid.student_ce, &codi.student_ce),
            ("teacher_ce", &hybrid.teacher_ce, &codi.teacher_ce),
            ("kd", &hybrid.kd, &codi.kd),
        ] {
            let (h, c) = (value(h), value(c));
            assert!((h - c).abs() < 1e-4, "{name}: hybrid {h} vs CODI {c}");
        }
        // The <eot> alignment adds β · its distance (positive on a random model).
        let kd_eot = value(&aligned.kd_eot);
        assert!(kd_eot > 1e-3);
        assert!((value(&aligned.codi.total) - value(&codi.total) - 0.7 * kd_eot).abs() < 1e-4);
        // Switch labels add the <bot> and <eot> predictions to the student CE.
        let labelled: Vec<HybridExample> = latent
            .iter()
            .map(|e| HybridExample {
                switch_labels: true,
                ..e.clone()
            })
            .collect();
        let refs: Vec<&HybridExample> = labelled.iter().collect();
        let batch = collate_hybrid(&refs, &vec![false; refs.len()], &model.tokens);
        let with_labels = hybrid_loss(&model, &batch, &config, false).unwrap().codi;
        assert!((value(&with_labels.student_ce) - value(&codi.student_ce)).abs() > 1e-3);
        // Teacher-only rows: the student terms are those of the latent rows alone.
        let mut mixed: Vec<&HybridExample> = latent.iter().collect();
        let explicit: Vec<HybridExample> = latent.iter().map(HybridExample::cot_only).collect();
        mixed.extend(explicit.iter().take(3));
        let batch = collate_hybrid(&mixed, &vec![false; mixed.len()], &model.tokens);
        assert_eq!(batch.size, latent.len());
        let with_explicit = hybrid_loss(&model, &batch, &config, false).unwrap().codi;
        assert!((value(&with_explicit.student_ce) - value(&codi.student_ce)).abs() < 1e-4);
        assert!((value(&with_explicit.kd) - value(&codi.kd)).abs() < 1e-4);
        // A batch of teacher-only rows is γ · teacher CE.
        let only: Vec<&HybridExample> = explicit.iter().collect();
        let batch = collate_hybrid(&only, &vec![false; only.len()], &model.tokens);
        let terms = hybrid_loss(&model, &batch, &config, true).unwrap().codi;
        assert!((value(&terms.total) - 1.3 * value(&terms.teacher_ce)).abs() < 1e-5);
    }
}
