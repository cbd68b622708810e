//! Decoder and MaskGIT properties on a small random model: parameter counts, guidance on logits,
//! the head never predicting `<mask>`, given positions kept, everything filled; each decoding step
//! re-checked against the model (the time it was run at, the tokens it chose, the most confident
//! committed, the schedule's counts), special tokens, and the correction rounds (their scores,
//! what they re-mask and what they keep).

use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use latent_core::CpuBackend;
use rand::rngs::StdRng;
use rand::SeedableRng;
use sgdd_diffusion::decoder::{DecoderConfig, SgddModel};
use sgdd_diffusion::diffusion::{float_tensor, ids_tensor};
use sgdd_diffusion::encoder::SpecialTokens;
use sgdd_diffusion::maskgit::{
    consistency_scores, guided_logits, guided_logits_at, maskgit_decode, maskgit_decode_observed,
    DecodeConfig, DecodeStep, GuidedRows,
};
use sgdd_diffusion::schedule::MaskSchedule;

type B = CpuBackend;
const MASK: u32 = 4;
/// The small model's special tokens: pad 0, unk 1, bos 2, eos 3, mask 4.
const SPECIAL: SpecialTokens = SpecialTokens {
    mask: MASK,
    pad: 0,
    bos: 2,
    eos: 3,
    unk: Some(1),
};

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

/// `model.cond_norm` standardises the semantic vector: scaling it (and shifting it) leaves the
/// logits unchanged with the norm and changes them without it; its two vectors are counted.
#[test]
fn the_semantic_vector_norm_makes_the_output_blind_to_its_scale() {
    let device = Default::default();
    let change = |cond_norm: bool| {
        let config = DecoderConfig {
            cond_norm,
            ..small().0
        };
        let model = SgddModel::<B>::new(&config, 50, 16, MASK, &device);
        assert_eq!(model.num_params(), config.num_parameters(50, 16));
        let tokens = ids_tensor::<B>(&[2, MASK, 7, MASK, 3, 0, 0, 0, 0, 0, 0, 0], 1, 12, &device);
        let vector: Vec<f32> = (0..16).map(|i| (i as f32 * 0.7).sin()).collect();
        let logits = |scale: f32| {
            let v: Vec<f32> = vector.iter().map(|x| x * scale + 0.5 * scale).collect();
            model.forward(
                tokens.clone(),
                float_tensor::<B, 1>(vec![0.4], [1], &device),
                float_tensor::<B, 2>(v, [1, 16], &device),
                Tensor::zeros([1], &device),
            )
        };
        let diff: f32 = (logits(1.0) - logits(8.0)).abs().max().into_scalar().elem();
        diff
    };
    assert!(change(true) < 1e-4, "{}", change(true));
    assert!(change(false) > 1e-2, "{}", change(false));
    let (plain, _) = small();
    let normed = DecoderConfig {
        cond_norm: true,
        ..plain.clone()
    };
    assert_eq!(
        normed.num_parameters(50, 16),
        plain.num_parameters(50, 16) + 2 * 16
    );
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
            &SPECIAL,
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

/// Three rows of `len` 12 from `<s>` + masks, row 1 with a given token; their semantic vectors.
fn decode_inputs(device: &burn::tensor::Device<B>) -> (Vec<u32>, Tensor<B, 2>) {
    let len = 12;
    let mut init = vec![MASK; 3 * len];
    for r in 0..3 {
        init[r * len] = SPECIAL.bos;
    }
    init[len + 5] = 17;
    let cond = float_tensor::<B, 2>(
        (0..48).map(|i| (i as f32 * 0.11).cos()).collect(),
        [3, 16],
        device,
    );
    (init, cond)
}

/// Every step of a decode, as `maskgit_decode_observed` reports it, and the output.
fn observed_decode(
    model: &SgddModel<B>,
    cond: Tensor<B, 2>,
    init: &[u32],
    config: &DecodeConfig,
) -> (Vec<DecodeStep>, Vec<u32>) {
    let mut steps = Vec::new();
    let out = maskgit_decode_observed(
        model,
        cond,
        init,
        12,
        &SPECIAL,
        config,
        &MaskSchedule::default(),
        &mut StdRng::seed_from_u64(1),
        |step| steps.push(step.clone()),
    );
    (steps, out)
}

/// `(2/π)·asin(masked / maskable)`: the time whose masking probability sin(πt/2) is the fraction.
fn time_of(masked: usize, maskable: usize) -> f32 {
    ((masked as f64 / maskable as f64).asin() * 2.0 / std::f64::consts::PI) as f32
}

/// Each decoding step re-checked against the model itself: the time each row was given is that of
/// its actual masked fraction; at that time the guided logits' best allowed token (no `<s>`,
/// `<unk>`, `<mask>`, pad only after `</s>`) is the token chosen, with its renormalised
/// log-probability as confidence; the committed tokens are the most confident of their row.
#[test]
fn each_step_runs_at_the_true_masked_fraction_and_commits_the_most_confident() {
    let (_, model) = small();
    let device = Default::default();
    let (init, cond) = decode_inputs(&device);
    let len = 12;
    let config = DecodeConfig {
        steps: 6,
        ..Default::default()
    };
    let (steps, out) = observed_decode(&model, cond.clone(), &init, &config);
    assert_eq!(steps.len(), 6);
    for (s, step) in steps.iter().enumerate() {
        assert_eq!(step.step, s);
        let masked: Vec<usize> = (0..3)
            .map(|r| {
                step.tokens[r * len..(r + 1) * len]
                    .iter()
                    .filter(|&&x| x == MASK)
                    .count()
            })
            .collect();
        let want_t: Vec<f32> = masked.iter().map(|&m| time_of(m, len - 1)).collect();
        for r in 0..3 {
            assert!(
                (step.t[r] - want_t[r]).abs() < 1e-6,
                "step {s} row {r}: t {} for {} of {} masked",
                step.t[r],
                masked[r],
                len - 1
            );
        }
        let logits = guided_logits(
            &model,
            ids_tensor::<B>(&step.tokens, 3, len, &device),
            float_tensor::<B, 1>(want_t, [3], &device),
            cond.clone(),
            config.cfg_scale,
        )
        .reshape([3 * len, 50]);
        let logits: Vec<f32> = logits.into_data().to_vec().unwrap();
        for (k, &p) in step.positions.iter().enumerate() {
            assert_eq!(
                step.tokens[p], MASK,
                "step {s}: position {p} was not masked"
            );
            let row = &step.tokens[p - p % len..p - p % len + len];
            let end = row.iter().skip(1).position(|&x| x == SPECIAL.eos);
            let pad_ok = end.is_some_and(|e| p % len > e + 1);
            let allowed =
                |v: usize| ![SPECIAL.bos, 1, MASK].contains(&(v as u32)) && (v != 0 || pad_ok);
            let l = &logits[p * 50..(p + 1) * 50];
            let best = (0..50)
                .filter(|&v| allowed(v))
                .max_by(|&a, &b| l[a].total_cmp(&l[b]))
                .unwrap();
            let norm = (0..50)
                .filter(|&v| allowed(v))
                .map(|v| ((l[v] - l[best]) as f64).exp())
                .sum::<f64>()
                .ln();
            assert_eq!(step.choice[k] as usize, best, "step {s} position {p}");
            let conf = -norm as f32;
            assert!(
                (step.confidence[k] - conf).abs() < 1e-3,
                "step {s} position {p}: confidence {} vs {conf}",
                step.confidence[k]
            );
        }
        // Greedy (τ = 0): within each row, every committed token is at least as confident as every
        // token left masked.
        for r in 0..3 {
            let in_row = |k: &usize| step.positions[*k] / len == r;
            let conf_of = |k: usize| step.confidence[k];
            let (done, kept): (Vec<usize>, Vec<usize>) = (0..step.positions.len())
                .filter(in_row)
                .partition(|&k| step.committed.contains(&step.positions[k]));
            assert!(!done.is_empty(), "step {s} row {r} committed nothing");
            let lowest_done = done
                .iter()
                .map(|&k| conf_of(k))
                .fold(f32::INFINITY, f32::min);
            let highest_kept = kept
                .iter()
                .map(|&k| conf_of(k))
                .fold(f32::NEG_INFINITY, f32::max);
            assert!(
                lowest_done >= highest_kept,
                "step {s} row {r}: committed {lowest_done} below kept {highest_kept}"
            );
        }
        let next = steps.get(s + 1).map_or(&out, |n| &n.tokens);
        for (i, (&a, &b)) in step.tokens.iter().zip(next).enumerate() {
            let committed = step.committed.contains(&i);
            assert_eq!(committed, a == MASK && b != MASK, "step {s}: position {i}");
        }
    }
    assert!(!out.contains(&MASK));
}

/// The masks left after each step, as `maskgit_decode` leaves them: `floor(N·cos(π/2·(s+1)/T))`,
/// at least one token committed per step, none left after the last.
#[test]
fn each_step_commits_per_the_cosine_schedule() {
    let (_, model) = small();
    let device = Default::default();
    let (init, cond) = decode_inputs(&device);
    let left_after = |total: usize| {
        let config = DecodeConfig {
            steps: total,
            ..Default::default()
        };
        let (steps, _) = observed_decode(&model, cond.clone(), &init, &config);
        (0..3)
            .map(|r| {
                steps
                    .iter()
                    .filter_map(|st| {
                        let before = st.tokens[r * 12..(r + 1) * 12]
                            .iter()
                            .filter(|&&x| x == MASK)
                            .count();
                        let done = st.committed.iter().filter(|&&i| i / 12 == r).count();
                        (before > 0).then_some(before - done)
                    })
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    // Rows 0 and 2 start with N = 11 masks, row 1 (one given token) with 10.
    // T = 4: floor(11 cos(π/8)) = 10, floor(11 cos(π/4)) = 7, floor(11 cos(3π/8)) = 4, then 0.
    let four = left_after(4);
    assert_eq!(four[0], vec![10, 7, 4, 0]);
    assert_eq!(four[1], vec![9, 7, 3, 0]);
    // T = 16: the schedule would keep more than one fewer each step; one commit per step wins.
    let sixteen = left_after(16);
    assert_eq!(sixteen[2], (0..11).rev().collect::<Vec<_>>());
    assert_eq!(sixteen[1], (0..10).rev().collect::<Vec<_>>());
}

/// A model whose every position prefers `<s>`, then `<unk>`, then `<pad>`, then `</s>` (the final
/// norm's scale zeroed, its shift one axis; that axis of the tied embedding sets the preferences):
/// decoding never chooses `<s>` or `<unk>`, and puts `<pad>` only after a `</s>` of its row.
#[test]
fn decoding_never_chooses_start_or_unknown_and_pads_only_after_the_end() {
    let (_, mut model) = small();
    let device = Default::default();
    let h = 32;
    model.norm.weight = Param::from_tensor(Tensor::zeros([h], &device));
    let mut shift = vec![0.0f32; h];
    shift[0] = 1.0;
    model.norm.bias = Some(Param::from_tensor(float_tensor::<B, 1>(
        shift,
        [h],
        &device,
    )));
    let mut embedding: Vec<f32> = model.embed.weight.val().into_data().to_vec().unwrap();
    for (token, preference) in [
        (SPECIAL.bos, 9.0),
        (1, 8.0),
        (SPECIAL.pad, 7.0),
        (SPECIAL.eos, 6.0),
    ] {
        embedding[token as usize * h] = preference;
    }
    let model = model.with_embedding(embedding);
    let (init, cond) = decode_inputs(&device);
    for steps in [1, 4, 16] {
        let config = DecodeConfig {
            steps,
            ..Default::default()
        };
        let (_, out) = observed_decode(&model, cond.clone(), &init, &config);
        for (r, row) in out.chunks(12).enumerate() {
            assert_eq!(row[0], SPECIAL.bos);
            assert!(
                !row[1..].contains(&SPECIAL.bos) && !row[1..].contains(&1),
                "steps {steps} row {r}: {row:?}"
            );
            for (p, &x) in row.iter().enumerate() {
                if x == SPECIAL.pad {
                    assert!(
                        row[1..p].contains(&SPECIAL.eos),
                        "steps {steps} row {r}: pad at {p} before any end token: {row:?}"
                    );
                }
            }
            if steps > 1 {
                // Pads are the model's favourite once an end token stands before them.
                assert!(row.contains(&SPECIAL.pad), "steps {steps} row {r}: {row:?}");
            }
        }
    }
}

/// Re-embed-and-correct scores each token with itself masked, as the loss trains the model: the
/// positions in groups of stride `groups`, each group masked in turn, the model at the masked
/// fraction's time; not the log-probability of the unmasked token, which no loss trains.
#[test]
fn consistency_scores_each_token_with_it_masked_at_the_true_time() {
    let (_, model) = small();
    let device = Default::default();
    let len = 12;
    let tokens: Vec<u32> = (0..2 * len)
        .map(|i| {
            if i % len == 0 {
                SPECIAL.bos
            } else {
                5 + (i as u32 * 7) % 40
            }
        })
        .collect();
    let cond = float_tensor::<B, 2>(
        (0..32).map(|i| (i as f32 * 0.23).sin()).collect(),
        [2, 16],
        &device,
    );
    let groups = 3;
    let got = consistency_scores(
        &model,
        cond.clone(),
        &tokens,
        len,
        groups,
        2.0,
        &MaskSchedule::default(),
    );
    assert_eq!(got.len(), 2 * len);
    let mut differs_from_in_context = false;
    let in_context = log_softmax(
        guided_logits(
            &model,
            ids_tensor::<B>(&tokens, 2, len, &device),
            float_tensor::<B, 1>(vec![0.2, 0.2], [2], &device),
            cond.clone(),
            2.0,
        ),
        2,
    )
    .reshape([2 * len, 50]);
    let in_context: Vec<f32> = in_context.into_data().to_vec().unwrap();
    for g in 0..groups {
        let group: Vec<usize> = (0..2 * len)
            .filter(|&i| i % len >= 1 && (i % len - 1) % groups == g)
            .collect();
        let mut input = tokens.clone();
        for &i in &group {
            input[i] = MASK;
        }
        // 11 positions after <s> in 3 groups: 4, 4 and 3 of them masked per row.
        let per_row = group.len() / 2;
        let t = time_of(per_row, len - 1);
        let logp = log_softmax(
            guided_logits(
                &model,
                ids_tensor::<B>(&input, 2, len, &device),
                float_tensor::<B, 1>(vec![t, t], [2], &device),
                cond.clone(),
                2.0,
            ),
            2,
        )
        .reshape([2 * len, 50]);
        let logp: Vec<f32> = logp.into_data().to_vec().unwrap();
        for &i in &group {
            let want = logp[i * 50 + tokens[i] as usize];
            assert!(
                (got[i] - want).abs() < 1e-4,
                "position {i}: score {} vs masked log-prob {want}",
                got[i]
            );
            differs_from_in_context |=
                (want - in_context[i * 50 + tokens[i] as usize]).abs() > 1e-2;
        }
    }
    assert!(
        differs_from_in_context,
        "the check cannot tell masked from unmasked scoring"
    );
    assert_eq!(
        (got[0], got[len]),
        (0.0, 0.0),
        "start tokens are not scored"
    );
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

/// A correction round re-masks, in each row, the `ceil(11 × 0.2) = 3` tokens that
/// `consistency_scores` finds least consistent (only those may change), re-decodes them, and keeps
/// the candidate for exactly the rows whose re-encoded cosine to the input vector improved.
#[test]
fn a_correction_round_remasks_the_least_consistent_and_keeps_only_improvements() {
    let (_, model) = small();
    let device = Default::default();
    let (rows, len) = (6, 12);
    let cond: Vec<Vec<f32>> = (0..rows)
        .map(|r| {
            (0..16)
                .map(|j| ((r * 16 + j) as f32 * 0.37).sin())
                .collect()
        })
        .collect();
    // A stand-in encoder: a row's vector counts its tokens by id modulo 16.
    let features = |row: &[u32]| {
        let mut v = vec![0.0f32; 16];
        for &x in &row[1..] {
            v[x as usize % 16] += 1.0;
        }
        v
    };
    let config = DecodeConfig {
        steps: 4,
        correct_rounds: 1,
        correct_fraction: 0.2,
        correct_steps: 2,
        ..Default::default()
    };
    let schedule = MaskSchedule::default();
    let mut seen: Vec<Vec<u32>> = Vec::new();
    let out = sgdd_diffusion::maskgit::generate(
        &model,
        &cond,
        len,
        &SPECIAL,
        &config,
        &schedule,
        |ids: &[u32]| {
            seen.push(ids.to_vec());
            ids.chunks(len).map(features).collect()
        },
    );
    assert_eq!(seen.len(), 2, "one decode and one candidate re-encoded");
    let (first, candidate) = (&seen[0], &seen[1]);
    let cond_t = float_tensor::<B, 2>(
        cond.iter().flatten().copied().collect(),
        [rows, 16],
        &device,
    );
    let scores = consistency_scores(&model, cond_t, first, len, 5, config.cfg_scale, &schedule);
    let mut changed_any = false;
    for (r, target) in cond.iter().enumerate() {
        let mut order: Vec<usize> = (r * len + 1..(r + 1) * len).collect();
        order.sort_by(|&i, &j| scores[i].total_cmp(&scores[j]));
        let least = &order[..3];
        for i in r * len..(r + 1) * len {
            if candidate[i] != first[i] {
                changed_any = true;
                assert!(
                    least.contains(&i),
                    "row {r}: position {} changed but is not among the 3 least consistent {:?}",
                    i - r * len,
                    least.iter().map(|p| p - r * len).collect::<Vec<_>>()
                );
            }
        }
        let cos = |ids: &[u32]| sgdd_diffusion::maskgit::cosine(&features(ids), target);
        let span = r * len..(r + 1) * len;
        let want = if cos(&candidate[span.clone()]) > cos(&first[span.clone()]) {
            &candidate[span.clone()]
        } else {
            &first[span.clone()]
        };
        assert_eq!(&out[span], want, "row {r}");
    }
    assert!(
        changed_any,
        "the round changed no token: the check is vacuous"
    );
}
