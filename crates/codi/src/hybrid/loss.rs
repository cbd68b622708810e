//! The Phase 2 loss: `L = CE(student explicit outputs) + β·KD + γ·CE(teacher)`, with the same
//! model, special ids, projection and forward as plain CODI.
//!
//! The student pass runs a [`HybridBatch`] chunk by chunk through one KV cache (see
//! [`crate::hybrid::batch`]); each latent run starts from the hidden state at its `<bot>` and
//! feeds projected hidden states back, gradients flowing through the whole chain. KD compares
//! every hidden-state layer at the token before the answer with the teacher's (the explicit
//! sequence) exactly as in [`crate::loss`].

use burn::prelude::*;
use latent_core::infer::KvCache;
use latent_core::LmInput;

use super::batch::HybridBatch;
use crate::loss::{
    combine_terms, int_tensor, masked_ce, masked_ce_sum, select_positions, teacher_forward,
    CodiTerms, LossConfig,
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
}

/// `[b, n]` Int tensor of 0/1 from host flags.
fn flags<B: Backend>(values: &[bool], device: &B::Device) -> Tensor<B, 2, Int> {
    let data: Vec<i64> = values.iter().map(|&v| i64::from(v)).collect();
    Tensor::from_data(TensorData::new(data, [values.len(), 1]), device)
}

/// The batched student pass of `batch`.
pub fn student_pass<B: Backend>(
    model: &CodiModel<B>,
    batch: &HybridBatch,
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
    for (i, chunk) in batch.chunks.iter().enumerate() {
        let finals: Vec<usize> = (0..b).filter(|&r| batch.final_chunk[r] == i).collect();
        let input = LmInput::ids(int_tensor(&chunk.ids, &device))
            .attention_mask(int_tensor(&chunk.mask, &device))
            .output_hidden_states(!finals.is_empty());
        let out = model.lm.forward_cached(input, &mut cache)?;
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
            last = model.lm.forward_cached(input, &mut cache)?.last_hidden;
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
    Ok(StudentPass {
        ce_sum: ce_sum.expect("at least one chunk"),
        ce_count,
        distill,
    })
}

/// The Phase 2 loss of one micro-batch (`config.num_latent` is unused: the runs say how many
/// thoughts each row feeds).
pub fn hybrid_loss<B: Backend>(
    model: &CodiModel<B>,
    batch: &HybridBatch,
    config: &LossConfig,
) -> Result<CodiTerms<B>> {
    let teacher = teacher_forward(model, &batch.teacher, true)?;
    let student = student_pass(model, batch)?;
    let teacher_ce = masked_ce(teacher.logits, &batch.teacher);
    let student_ce = student.ce_sum / student.ce_count.max(1) as f64;
    Ok(combine_terms(
        teacher.hidden_states,
        &batch.teacher.distill,
        student.distill,
        student_ce,
        teacher_ce,
        config,
    ))
}

#[cfg(test)]
mod tests {
    use burn::tensor::activation::log_softmax;

    use super::*;
    use crate::hybrid::batch::{collate_hybrid, HybridExample};
    use crate::hybrid::testing::tiny_setup;

    /// One element of a student sequence: a token (and whether predicting it is trained) or a
    /// thought.
    enum Elem {
        Tok(u32, bool),
        Thought,
    }

    /// Row-by-row reference without a cache: every thought recomputes the whole prefix, then one
    /// forward over the finished sequence gives the CE sum, its count and the pre-answer states.
    fn reference<B: Backend>(
        model: &CodiModel<B>,
        e: &HybridExample,
    ) -> (f64, usize, Vec<Tensor<B, 1>>) {
        let t = model.tokens;
        let mut seq: Vec<Elem> = e
            .teacher
            .question
            .iter()
            .map(|&id| Elem::Tok(id, false))
            .collect();
        for (i, chunk) in e.chunks.iter().enumerate() {
            seq.extend(chunk.iter().map(|&id| Elem::Tok(id, true)));
            if let Some(&n) = e.runs.get(i) {
                seq.push(Elem::Tok(t.bot, false));
                seq.extend((0..n).map(|_| Elem::Thought));
                seq.push(Elem::Tok(t.eot, false));
            }
        }
        let distill = seq.len() + e.teacher.pre_answer;
        seq.extend(e.teacher.answer.iter().map(|&id| Elem::Tok(id, true)));
        let device = model.lm.device();
        let mut embeds: Vec<Tensor<B, 3>> = Vec::new();
        for el in &seq {
            let x = match el {
                Elem::Tok(id, _) => model.lm.embed(Tensor::from_data(
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
        for c in 0..seq.len() {
            let target = match seq.get(c + 1) {
                Some(Elem::Tok(id, true)) => Some(*id),
                None => Some(t.eos),
                _ => None,
            };
            if let Some(id) = target {
                sum -= f64::from(logp[c * v + id as usize]);
                count += 1;
            }
        }
        let states = out
            .hidden_states
            .into_iter()
            .map(|h| {
                let d = h.dims()[2];
                h.slice([0..1, distill..distill + 1, 0..d]).reshape([d])
            })
            .collect();
        (sum, count, states)
    }

    #[test]
    fn batched_student_pass_matches_a_row_by_row_reference() {
        let (model, _, examples) = tiny_setup();
        // Rows of different shapes: no run, one run, two runs with empty chunks, a run at the end.
        let shaped: Vec<HybridExample> = examples
            .iter()
            .take(5)
            .enumerate()
            .map(|(n, e)| {
                let c = &e.cot;
                let (chunks, runs) = match n % 4 {
                    0 => (vec![c.clone()], vec![]),
                    1 => (vec![c[..3].to_vec(), c[3..].to_vec()], vec![2]),
                    2 => (vec![vec![], c[..5].to_vec(), vec![]], vec![1, 3]),
                    _ => (vec![c[..2].to_vec(), vec![]], vec![4]),
                };
                HybridExample {
                    teacher: e.clone(),
                    chunks,
                    runs,
                }
            })
            .collect();
        let refs: Vec<&HybridExample> = shaped.iter().collect();
        let batch = collate_hybrid(&refs, &vec![false; refs.len()], &model.tokens);
        let pass = student_pass(&model, &batch).unwrap();
        let mut total = 0.0;
        let mut count = 0;
        for (r, e) in shaped.iter().enumerate() {
            let (sum, n, states) = reference(&model, e);
            total += sum;
            count += n;
            assert_eq!(states.len(), pass.distill.len());
            for (layer, (want, got)) in states.into_iter().zip(&pass.distill).enumerate() {
                let d = want.dims()[0];
                let got: Vec<f32> = got
                    .clone()
                    .slice([r..r + 1, 0..d])
                    .into_data()
                    .to_vec()
                    .unwrap();
                let want: Vec<f32> = want.into_data().to_vec().unwrap();
                let diff = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(diff < 1e-4, "row {r} layer {layer}: max difference {diff}");
            }
        }
        assert_eq!(pass.ce_count, count);
        let got = pass.ce_sum.into_scalar().elem::<f64>();
        assert!(
            (got - total).abs() < 1e-4 * count as f64,
            "CE sum {got} vs {total}"
        );
    }
}
