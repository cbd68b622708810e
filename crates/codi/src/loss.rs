//! The CODI loss (`L = L_student + β·L_KD + γ·L_teacher`) and the baselines' cross-entropy.
//!
//! - Teacher: one full forward over `Q ‖ CoT ‖ A ‖ EOS` with every hidden state; its CE covers all
//!   but the question; its hidden states at the pre-answer token are the (detached) KD targets.
//! - Student: `Q ‖ <bot>` through a KV cache, then `num_latent` continuous thoughts (each the
//!   projected final hidden state of the previous position), then `<eot> ‖ A` teacher-forced with CE
//!   predicting `A ‖ EOS`. Gradients flow through the cache and the whole chain of thoughts.
//! - KD: for every hidden-state index `l = 0..=L` (embeddings, each block, final norm),
//!   `SmoothL1_{β=1}(h_s^l[p_s], sg(h_t^l[p_t])) / std(h_t^l[p_t])` (std: unbiased, over the batch
//!   and width; the L2 option divides the MSE by `std²`), averaged over the `L + 1` layers.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use latent_core::infer::KvCache;
use latent_core::model::to_f32;
use latent_core::{LmInput, LmOutput};
use serde::{Deserialize, Serialize};

use crate::batch::{CodiBatch, Grid, SeqBatch};
use crate::model::CodiModel;
use crate::Result;

/// The distance between student and teacher hidden states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistillLoss {
    /// Smooth L1 with β = 1 (the reference default).
    #[default]
    SmoothL1,
    /// Mean squared error.
    L2,
}

/// Loss settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossConfig {
    /// Continuous thoughts fed (6).
    pub num_latent: usize,
    /// β: weight of the distillation term.
    pub distill_loss_factor: f64,
    /// γ: weight of the teacher CE.
    pub ref_loss_factor: f64,
    /// Distance of the distillation term.
    pub distill_loss_type: DistillLoss,
    /// Reproduce the reference code's masking: no attention mask after the question pass and
    /// position ids that count left padding.
    pub reference_masking: bool,
}

/// The terms of one micro-batch's loss.
#[derive(Debug, Clone)]
pub struct CodiTerms<B: Backend> {
    /// `L_student + β·L_KD + γ·L_teacher`, `[1]`.
    pub total: Tensor<B, 1>,
    /// Student CE over `A ‖ EOS`, `[1]`.
    pub student_ce: Tensor<B, 1>,
    /// Teacher CE over everything but the question, `[1]`.
    pub teacher_ce: Tensor<B, 1>,
    /// The distillation term (mean over layers), `[1]`.
    pub kd: Tensor<B, 1>,
    /// Each layer's normalised distance, `L + 1` of `[1]`.
    pub kd_layers: Vec<Tensor<B, 1>>,
}

/// A host grid as an Int tensor `[rows, cols]`.
pub fn int_tensor<B: Backend>(grid: &Grid, device: &B::Device) -> Tensor<B, 2, Int> {
    Tensor::from_data(
        TensorData::new(grid.data.clone(), [grid.rows, grid.cols]),
        device,
    )
}

/// Mean next-token CE of `logits` `[b, s, V]` over the positions `batch.weights` counts.
pub fn masked_ce<B: Backend>(logits: Tensor<B, 3>, batch: &SeqBatch) -> Tensor<B, 1> {
    let (sum, count) = masked_ce_sum(logits, batch);
    sum / count.max(1) as f64
}

/// Summed next-token CE of `logits` `[b, s, V]` over the positions `batch.weights` counts (`[1]`),
/// and how many positions that is.
pub fn masked_ce_sum<B: Backend>(logits: Tensor<B, 3>, batch: &SeqBatch) -> (Tensor<B, 1>, usize) {
    let device = logits.device();
    let [b, s, _] = logits.dims();
    let targets = int_tensor::<B>(&batch.targets, &device).reshape([b, s, 1]);
    let weights: Vec<f32> = batch.weights.data.iter().map(|&w| w as f32).collect();
    let count = batch.weights.data.iter().filter(|&&w| w != 0).count();
    let weights = Tensor::<B, 2>::from_data(TensorData::new(weights, [b, s]), &device);
    // The log-softmax in f32 whatever the compute dtype (as autocast runs it).
    let picked = log_softmax(to_f32(logits), 2)
        .gather(2, targets)
        .reshape([b, s]);
    (-(picked * weights).sum(), count)
}

/// Rows `positions[i]` of `x` `[b, s, D]` → `[b, D]`.
pub(crate) fn select_positions<B: Backend>(x: Tensor<B, 3>, positions: &[usize]) -> Tensor<B, 2> {
    let [b, s, d] = x.dims();
    let flat: Vec<i64> = positions
        .iter()
        .enumerate()
        .map(|(r, &p)| (r * s + p) as i64)
        .collect();
    let index = Tensor::<B, 1, Int>::from_data(TensorData::new(flat, [b]), &x.device());
    x.reshape([b * s, d]).select(0, index)
}

/// One layer's distillation distance, `[1]`: `SmoothL1(student, teacher) / std(teacher)`, or
/// `MSE(student, teacher) / std(teacher)²` (the reference's normalisation of each).
pub(crate) fn layer_distance<B: Backend>(
    student: Tensor<B, 2>,
    teacher: Tensor<B, 2>,
    kind: DistillLoss,
) -> Tensor<B, 1> {
    // In f32 whatever the compute dtype (a sum over the batch and width).
    let (student, teacher) = (to_f32(student), to_f32(teacher));
    let n = teacher.dims().iter().product::<usize>();
    let flat = teacher.clone().reshape([n]);
    let mean = flat.clone().mean();
    let centred = flat - mean.unsqueeze();
    let std = (centred.powi_scalar(2).sum() / (n.max(2) - 1) as f64).sqrt();
    let diff = student - teacher;
    let distance = match kind {
        DistillLoss::SmoothL1 => {
            // 0.5 d² for |d| < 1, |d| − 0.5 otherwise, written as m (|d| − m/2) with m = min(|d|, 1).
            let a = diff.abs();
            let m = a.clone().clamp_max(1.0);
            (m.clone() * (a - m / 2.0)).mean()
        }
        // The reference divides the squared distance by the variance, so that both losses
        // scale with the teacher's spread the same way.
        DistillLoss::L2 => return diff.powi_scalar(2).mean() / std.powi_scalar(2),
    };
    distance / std
}

/// The teacher pass: logits and every hidden state of `batch.teacher`.
pub(crate) fn teacher_forward<B: Backend>(
    model: &CodiModel<B>,
    batch: &SeqBatch,
    hidden_states: bool,
) -> Result<LmOutput<B>> {
    let device = model.lm.device();
    let input = LmInput::ids(int_tensor(&batch.ids, &device))
        .attention_mask(int_tensor(&batch.mask, &device))
        .output_hidden_states(hidden_states);
    Ok(model.lm.forward(input)?)
}

/// A KV cache for the student pass of `batch` after `prefix` filled slots.
fn student_cache<B: Backend>(
    model: &CodiModel<B>,
    batch: &CodiBatch,
    prefix: usize,
    num_latent: usize,
) -> KvCache<B> {
    let capacity = prefix + 1 + num_latent + batch.decoder.ids.cols;
    let dtype = model.lm.embed_tokens.weight.val().dtype();
    KvCache::new(
        model.lm.config(),
        batch.size,
        capacity,
        dtype,
        &model.lm.device(),
    )
}

/// The thoughts and the decoder segment after the `<bot>` position, whose final hidden state is
/// `last` `[b, 1, D]`; returns the decoder's output with every hidden state.
fn thoughts_and_decoder<B: Backend>(
    model: &CodiModel<B>,
    batch: &CodiBatch,
    mut last: Tensor<B, 3>,
    cache: &mut KvCache<B>,
    num_latent: usize,
) -> Result<LmOutput<B>> {
    for _ in 0..num_latent {
        let thought = model.thought(last);
        last = model
            .lm
            .forward_cached(LmInput::embeds(thought), cache)?
            .last_hidden;
    }
    let device = model.lm.device();
    let decoder = &batch.decoder;
    let input = LmInput::ids(int_tensor(&decoder.ids, &device))
        .attention_mask(int_tensor(&decoder.mask, &device))
        .output_hidden_states(true);
    Ok(model.lm.forward_cached(input, cache)?)
}

/// Teacher and student passes sharing the question: the teacher runs through a KV cache whose
/// slots past each row's question are then hidden, so the student continues from the teacher's
/// question keys and values with `<bot>`. Causal attention makes this the same computation as a
/// separate student pass over `Q ‖ <bot>` (without its cost).
fn shared_passes<B: Backend>(
    model: &CodiModel<B>,
    batch: &CodiBatch,
    num_latent: usize,
) -> Result<(LmOutput<B>, LmOutput<B>)> {
    let device = model.lm.device();
    let teacher_len = batch.teacher.ids.cols;
    let mut cache = student_cache(model, batch, teacher_len, num_latent);
    let input = LmInput::ids(int_tensor(&batch.teacher.ids, &device))
        .attention_mask(int_tensor(&batch.teacher.mask, &device))
        .output_hidden_states(true);
    let teacher = model.lm.forward_cached(input, &mut cache)?;
    let keep: Vec<i64> = batch
        .question_lens
        .iter()
        .flat_map(|&q| (0..teacher_len).map(move |c| i64::from(c < q)))
        .collect();
    cache.hide_filled(Tensor::from_data(
        TensorData::new(keep, [batch.size, teacher_len]),
        &device,
    ));
    let bot = vec![i64::from(model.tokens.bot); batch.size];
    let bot = Tensor::<B, 2, Int>::from_data(TensorData::new(bot, [batch.size, 1]), &device);
    let last = model
        .lm
        .forward_cached(LmInput::ids(bot), &mut cache)?
        .last_hidden;
    let student = thoughts_and_decoder(model, batch, last, &mut cache, num_latent)?;
    Ok((teacher, student))
}

/// The student pass on its own: `Q ‖ <bot>` (left-padded), the thoughts, then the decoder segment;
/// returns the decoder's output with every hidden state. With `reference_masking`, the question
/// pass uses position ids that count padding and later positions see the padding.
pub fn student_forward<B: Backend>(
    model: &CodiModel<B>,
    batch: &CodiBatch,
    num_latent: usize,
    reference_masking: bool,
) -> Result<LmOutput<B>> {
    let device = model.lm.device();
    let (q_ids, q_mask) = &batch.question;
    let b = batch.size;
    let mut cache = student_cache(model, batch, q_ids.cols, num_latent);
    let mut input =
        LmInput::ids(int_tensor(q_ids, &device)).attention_mask(int_tensor(q_mask, &device));
    if reference_masking {
        let q = q_ids.cols;
        let positions = Tensor::<B, 1, Int>::arange(0..q as i64, &device)
            .unsqueeze::<2>()
            .expand([b, q]);
        input = input.position_ids(positions);
    }
    let out = model.lm.forward_cached(input, &mut cache)?;
    if reference_masking {
        cache.unmask_filled();
    }
    let [_, q, h] = out.last_hidden.dims();
    let last = out.last_hidden.slice([0..b, q - 1..q, 0..h]);
    thoughts_and_decoder(model, batch, last, &mut cache, num_latent)
}

/// The full CODI loss of one micro-batch.
pub fn codi_loss<B: Backend>(
    model: &CodiModel<B>,
    batch: &CodiBatch,
    config: &LossConfig,
) -> Result<CodiTerms<B>> {
    let (teacher, student) = if config.reference_masking {
        (
            teacher_forward(model, &batch.teacher, true)?,
            student_forward(model, batch, config.num_latent, true)?,
        )
    } else {
        shared_passes(model, batch, config.num_latent)?
    };
    let teacher_ce = masked_ce(teacher.logits, &batch.teacher);
    let student_ce = masked_ce(student.logits, &batch.decoder);
    let student_states = student
        .hidden_states
        .into_iter()
        .map(|s| select_positions(s, &batch.decoder.distill))
        .collect();
    Ok(combine_terms(
        teacher.hidden_states,
        &batch.teacher.distill,
        student_states,
        student_ce,
        teacher_ce,
        config,
    ))
}

/// `L_student + β·L_KD + γ·L_teacher` from the two CE terms, the teacher's hidden states
/// (`L + 1` of `[b, s, D]`, distilled at `teacher_distill`) and the student's states at its
/// distilled positions (`L + 1` of `[b, D]`).
pub(crate) fn combine_terms<B: Backend>(
    teacher_states: Vec<Tensor<B, 3>>,
    teacher_distill: &[usize],
    student_states: Vec<Tensor<B, 2>>,
    student_ce: Tensor<B, 1>,
    teacher_ce: Tensor<B, 1>,
    config: &LossConfig,
) -> CodiTerms<B> {
    let kd_layers: Vec<Tensor<B, 1>> = teacher_states
        .into_iter()
        .zip(student_states)
        .map(|(t, s)| {
            let t = select_positions(t, teacher_distill).detach();
            layer_distance(s, t, config.distill_loss_type)
        })
        .collect();
    let layers = kd_layers.len() as f64;
    let kd = Tensor::cat(kd_layers.clone(), 0).sum() / layers;
    let total = student_ce.clone()
        + kd.clone() * config.distill_loss_factor
        + teacher_ce.clone() * config.ref_loss_factor;
    CodiTerms {
        total,
        student_ce,
        teacher_ce,
        kd,
        kd_layers,
    }
}

/// The baselines' loss: CE of the teacher sequences (CoT-SFT, or No-CoT-SFT when the batch was
/// collated without CoT), `[1]`.
pub fn sft_loss<B: Backend>(model: &CodiModel<B>, batch: &CodiBatch) -> Result<Tensor<B, 1>> {
    let out = teacher_forward(model, &batch.teacher, false)?;
    Ok(masked_ce(out.logits, &batch.teacher))
}

#[cfg(test)]
mod tests {
    use super::*;
    use latent_core::CpuBackend;

    /// Both distances by hand: teacher [0, 0, 2, 2] has variance 4/3 (unbiased); the differences
    /// [1, 2, 1, 2] give MSE 2.5 and SmoothL1 1.0.
    #[test]
    fn distances_are_normalised_as_the_reference() {
        let device = Default::default();
        let t = |v: [f32; 4]| {
            Tensor::<CpuBackend, 2>::from_data(TensorData::new(v.to_vec(), [2, 2]), &device)
        };
        let student = t([1.0, 2.0, 3.0, 4.0]);
        let teacher = t([0.0, 0.0, 2.0, 2.0]);
        let value = |kind| {
            layer_distance(student.clone(), teacher.clone(), kind)
                .into_scalar()
                .elem::<f64>()
        };
        let var = 4.0 / 3.0;
        assert!((value(DistillLoss::L2) - 2.5 / var).abs() < 1e-5);
        assert!((value(DistillLoss::SmoothL1) - 1.0 / f64::sqrt(var)).abs() < 1e-5);
    }
}
