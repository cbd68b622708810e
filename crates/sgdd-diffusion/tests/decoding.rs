//! Decoder and MaskGIT properties on a small random model: parameter counts, guidance on logits,
//! the head never predicting `<mask>`, given positions kept, everything filled.

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use latent_core::CpuBackend;
use rand::rngs::StdRng;
use rand::SeedableRng;
use sgdd_diffusion::decoder::{DecoderConfig, SgddModel};
use sgdd_diffusion::diffusion::{float_tensor, ids_tensor};
use sgdd_diffusion::maskgit::{
    guided_logits, guided_logits_at, maskgit_decode, DecodeConfig, GuidedRows,
};
use sgdd_diffusion::schedule::MaskSchedule;

type B = CpuBackend;
const MASK: u32 = 4;

fn small() -> (DecoderConfig, SgddModel<B>) {
    let config = DecoderConfig {
        layers: 2,
        hidden: 32,
        heads: 4,
        ffn: 48,
        max_len: 12,
        cond_tokens: 3,
        init_std: 0.2,
        ..Default::default()
    };
    let model = SgddModel::new(&config, 50, 16, MASK, &Default::default());
    (config, model)
}

#[test]
fn parameter_count_matches_the_formula_and_the_design() {
    let (config, model) = small();
    assert_eq!(model.num_params(), config.num_parameters(50, 16));
    // Design 004's sizes with RoBERTa's vocabulary and 768-wide vectors: about 51M trainable.
    let full = DecoderConfig::default().num_parameters(50_265, 768);
    eprintln!("design sizes, RoBERTa vocabulary and 768-wide vectors: {full} trainable parameters");
    assert!((50_000_000..53_000_000).contains(&full), "{full}");
}

/// With every input position `<mask>`, RoPE alone gives every position the same output (all value
/// vectors are equal); the absolute position embedding is what tells them apart.
#[test]
fn fully_masked_positions_differ_only_with_absolute_positions() {
    let device = Default::default();
    let spread = |absolute: bool| {
        let config = DecoderConfig {
            absolute_positions: absolute,
            ..small().0
        };
        let model = SgddModel::<B>::new(&config, 50, 16, MASK, &device);
        let tokens = ids_tensor::<B>(&[MASK; 12], 1, 12, &device);
        let t = float_tensor::<B, 1>(vec![1.0], [1], &device);
        let cond =
            float_tensor::<B, 2>((0..16).map(|i| i as f32 * 0.1).collect(), [1, 16], &device);
        let logits = model.forward(tokens, t, cond, Tensor::zeros([1], &device));
        let first = logits.clone().slice([0..1, 0..1, 0..50]);
        let diff: f32 = (logits - first).abs().max().into_scalar().elem();
        diff
    };
    assert!(
        spread(false) < 1e-4,
        "RoPE-only rows differ by {}",
        spread(false)
    );
    assert!(
        spread(true) > 1e-2,
        "absolute positions leave rows equal: {}",
        spread(true)
    );
}

/// Two rows of three tokens with masks, their times and semantic vectors (width 16).
fn guidance_inputs(
    device: &burn::tensor::Device<B>,
) -> (Tensor<B, 2, Int>, Tensor<B, 1>, Tensor<B, 2>) {
    let tokens = ids_tensor::<B>(&[2, MASK, 7, MASK, 9, 3], 2, 3, device);
    let t = float_tensor::<B, 1>(vec![0.7, 0.2], [2], device);
    let cond = float_tensor::<B, 2>(
        (0..32).map(|i| (i as f32 * 0.37).sin()).collect(),
        [2, 16],
        device,
    );
    (tokens, t, cond)
}

#[test]
fn guidance_is_applied_to_logits() {
    let (_, model) = small();
    let device = Default::default();
    let (tokens, t, cond) = guidance_inputs(&device);
    let lc = model.forward(
        tokens.clone(),
        t.clone(),
        cond.clone(),
        Tensor::zeros([2], &device),
    );
    let lu = model.forward(
        tokens.clone(),
        t.clone(),
        cond.clone(),
        Tensor::ones([2], &device),
    );
    let w = 2.0;
    let want = lu.clone() + (lc.clone() - lu) * (w + 1.0);
    let got = guided_logits(&model, tokens.clone(), t.clone(), cond.clone(), w);
    let diff: f32 = (got - want).abs().max().into_scalar();
    assert!(diff < 1e-3, "{diff}");
    // The same logits at selected positions only (what decoding and the loss use).
    let at = guided_logits_at(
        &model,
        tokens.clone(),
        t.clone(),
        cond.clone(),
        w,
        &[1, 3, 4],
    );
    let full = guided_logits(&model, tokens.clone(), t.clone(), cond.clone(), w).reshape([6, 50]);
    for (k, p) in [1usize, 3, 4].into_iter().enumerate() {
        let d: f32 = (at.clone().slice([k..k + 1, 0..50]) - full.clone().slice([p..p + 1, 0..50]))
            .abs()
            .max()
            .into_scalar();
        assert!(d < 1e-4, "position {p}: {d}");
    }
    // Built a range of rows at a time (as decoding does), the rows are the same.
    let rows = GuidedRows::new(
        &model,
        tokens.clone(),
        t.clone(),
        cond.clone(),
        w,
        &[1, 3, 4],
    );
    let pieces = Tensor::cat(vec![rows.logits(0..2), rows.logits(2..3)], 0);
    let d: f32 = (pieces - at).abs().max().into_scalar();
    assert!(d < 1e-4, "{d}");
    let plain = guided_logits(&model, tokens, t, cond, 0.0);
    let diff: f32 = (plain.clone() - lc).abs().max().into_scalar();
    assert_eq!(diff, 0.0);
    // The absorbing token is never predicted.
    let p_mask: f32 = log_softmax(plain, 2)
        .slice([0..2, 0..3, 4..5])
        .exp()
        .max()
        .into_scalar();
    assert!(p_mask < 1e-30, "{p_mask}");
}

#[test]
fn maskgit_fills_masks_and_keeps_given_tokens() {
    let (_, model) = small();
    let device = Default::default();
    let len = 12;
    let mut init = vec![MASK; 3 * len];
    for r in 0..3 {
        init[r * len] = 2;
    }
    init[len + 5] = 17; // a given token inside row 1
    let cond = float_tensor::<B, 2>(
        (0..48).map(|i| (i as f32 * 0.11).cos()).collect(),
        [3, 16],
        &device,
    );
    let schedule = MaskSchedule::default();
    for (steps, tau) in [(16, 0.0), (3, 4.5), (1, 0.0)] {
        let config = DecodeConfig {
            steps,
            gumbel_tau: tau,
            ..Default::default()
        };
        let out = maskgit_decode(
            &model,
            cond.clone(),
            &init,
            len,
            &config,
            &schedule,
            &mut StdRng::seed_from_u64(1),
        );
        assert_eq!(out.len(), init.len());
        assert!(!out.contains(&MASK), "steps {steps}: masks left");
        for (i, (&a, &b)) in init.iter().zip(&out).enumerate() {
            if a != MASK {
                assert_eq!(a, b, "given token at {i} changed");
            }
        }
    }
}

#[test]
fn each_step_commits_per_the_cosine_schedule() {
    // Decoding one step at a time (steps = T, stopping after step s) leaves exactly
    // floor(N cos(π/2 (s+1)/T)) masks: run s+1 steps of a T-step decode by truncating the schedule.
    let schedule = MaskSchedule::default();
    let n = 11;
    let total = 16;
    let mut left = n;
    for s in 0..total {
        let keep = schedule
            .masked_after(s, total, n)
            .min(left.saturating_sub(1));
        assert!(keep < left || left == 0, "step {s} commits nothing");
        left = keep;
    }
    assert_eq!(left, 0);
}

#[test]
fn guidance_in_half_precision_keeps_the_mask_logit_finite() {
    // f16 parameters: −1e9 would round to −inf and guidance compute (−inf) − (−inf) = NaN.
    let (_, model) = small();
    let model = latent_core::model::cast_module(model, burn::tensor::DType::F16);
    let device = Default::default();
    let (tokens, t, cond) = guidance_inputs(&device);
    let cond = cond.cast(burn::tensor::DType::F16);
    let logits = guided_logits(&model, tokens, t, cond, 2.0);
    assert_eq!(logits.dtype(), burn::tensor::DType::F16);
    let values: Vec<f32> = logits
        .cast(burn::tensor::DType::F32)
        .into_data()
        .to_vec()
        .unwrap();
    assert!(
        values.iter().all(|v| v.is_finite()),
        "a non-finite guided logit"
    );
    let want = sgdd_diffusion::decoder::mask_logit(burn::tensor::DType::F16) as f32;
    for (i, row) in values.chunks(50).enumerate() {
        assert_eq!(row[MASK as usize], want, "position {i}: the mask logit");
        let mut others = row.iter().enumerate().filter(|&(k, _)| k != MASK as usize);
        assert!(
            others.all(|(_, &v)| v > want),
            "position {i}: <mask> is not the lowest"
        );
    }
}
