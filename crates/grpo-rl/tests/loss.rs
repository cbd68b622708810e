//! The GRPO loss against TRL's `_compute_loss` restated in PyTorch
//! (`scripts/make_grpo_loss_fixture.py`): every reduction, with and without the KL term, on a reused
//! rollout (the ratio's clip is active), value and gradient within 1e-6.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::backend::Autodiff;
use burn::prelude::*;
use grpo_rl::loss::{grpo_loss, LossConfig, LossInputs, LossType};
use latent_core::hf::safetensors::{Checkpoint, HostTensor};
use latent_core::CpuBackend;

type AB = Autodiff<CpuBackend>;

#[derive(serde::Deserialize)]
struct Case {
    loss_type: LossType,
    beta: f64,
    epsilon: f64,
    epsilon_high: f64,
    max_completion_length: usize,
    batch_tokens: usize,
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn tensor(t: &HostTensor) -> Tensor<AB, 2> {
    Tensor::from_data(
        TensorData::new(t.data.clone(), t.shape.clone()),
        &Default::default(),
    )
}

fn values(t: Tensor<CpuBackend, 2>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec().unwrap()
}

#[test]
fn grpo_loss_matches_trls_reductions() {
    let file = Checkpoint::open(&[fixtures().join("loss.safetensors")]).unwrap();
    let read = |k: &str| file.read(k).unwrap().unwrap_or_else(|| panic!("{k}"));
    let cases: BTreeMap<String, Case> =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("loss.json")).unwrap())
            .unwrap();
    assert_eq!(cases.len(), 8);
    let mut clipped = false;
    for (name, case) in cases {
        let logps = tensor(&read("logps")).require_grad();
        let inputs = LossInputs {
            old_logps: Some(tensor(&read("old"))),
            ref_logps: Some(tensor(&read("ref"))),
            advantages: tensor(&read("advantages")),
            mask: tensor(&read("mask")),
            max_completion_length: case.max_completion_length,
            batch_tokens: case.batch_tokens,
        };
        let config = LossConfig {
            loss_type: case.loss_type,
            beta: case.beta,
            epsilon: case.epsilon,
            epsilon_high: case.epsilon_high,
        };
        let out = grpo_loss(logps.clone(), &inputs, &config);
        clipped |= out.clip_region > 0.0;
        let value: f32 = out.loss.clone().into_scalar().elem();
        let want = read(&format!("loss.{name}")).data[0];
        assert!(
            (value - want).abs() <= 1e-6,
            "{name}: loss {value} vs TRL {want}"
        );
        let grads = out.loss.backward();
        let got = values(logps.grad(&grads).unwrap());
        let want = read(&format!("grad.{name}")).data;
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-6,
                "{name}: gradient {i}: {g} vs TRL {w}"
            );
        }
    }
    assert!(clipped, "the fixture exercises the clip");
}

#[test]
fn padded_positions_cannot_make_nan() {
    // A padded position with a huge log-ratio (logp far below the old one) is masked: the clamp
    // before exp keeps its 0 · inf out of backward.
    let device = Default::default();
    let logps = Tensor::<AB, 2>::from_data(TensorData::new(vec![-1.0f32, -500.0], [1, 2]), &device)
        .require_grad();
    let inputs = LossInputs {
        old_logps: Some(Tensor::from_data(
            TensorData::new(vec![-1.1f32, -0.5], [1, 2]),
            &device,
        )),
        ref_logps: Some(Tensor::from_data(
            TensorData::new(vec![-1.0f32, 0.0], [1, 2]),
            &device,
        )),
        advantages: Tensor::from_data(TensorData::new(vec![1.0f32], [1, 1]), &device),
        mask: Tensor::from_data(TensorData::new(vec![1.0f32, 0.0], [1, 2]), &device),
        max_completion_length: 2,
        batch_tokens: 1,
    };
    for loss_type in [
        LossType::Grpo,
        LossType::Bnpo,
        LossType::DrGrpo,
        LossType::Dapo,
    ] {
        let config = LossConfig {
            loss_type,
            beta: 0.04,
            ..LossConfig::default()
        };
        let out = grpo_loss(logps.clone(), &inputs, &config);
        let grads = out.loss.backward();
        let g = values(logps.grad(&grads).unwrap());
        assert!(g.iter().all(|v| v.is_finite()), "{loss_type:?}: {g:?}");
        assert_eq!(
            g[1], 0.0,
            "{loss_type:?}: the padded position gets no gradient"
        );
    }
}

/// A micro-batch cut into data-parallel shards: each shard's loss times its `shard_factor`,
/// weighted by its share of the rows as the shared loop weights replicas, adds up to the whole
/// micro-batch's loss for every reduction (values and gradients).
#[test]
fn shard_losses_weighted_by_their_factor_add_up_to_the_micro_batch_loss() {
    let file = Checkpoint::open(&[fixtures().join("loss.safetensors")]).unwrap();
    let read = |k: &str| tensor(&file.read(k).unwrap().unwrap_or_else(|| panic!("{k}")));
    let [rows, width] = read("logps").dims();
    assert!(rows >= 3, "the fixture has {rows} rows");
    let mask_values = values(read("mask").inner());
    let tokens = |r: std::ops::Range<usize>| -> usize {
        mask_values[r.start * width..r.end * width]
            .iter()
            .filter(|&&m| m > 0.0)
            .count()
    };
    for loss_type in [
        LossType::Grpo,
        LossType::Bnpo,
        LossType::DrGrpo,
        LossType::Dapo,
    ] {
        let config = LossConfig {
            loss_type,
            beta: 0.04,
            epsilon: 0.2,
            epsilon_high: 0.28,
        };
        let loss_of = |r: std::ops::Range<usize>, logps: Tensor<AB, 2>| {
            let pick = |t: Tensor<AB, 2>| t.slice([r.clone(), 0..width]);
            let inputs = LossInputs {
                old_logps: Some(pick(read("old"))),
                ref_logps: Some(pick(read("ref"))),
                advantages: read("advantages").slice([r.clone(), 0..1]),
                mask: pick(read("mask")),
                max_completion_length: width + 3,
                batch_tokens: 2 * tokens(0..rows),
            };
            grpo_loss(pick(logps), &inputs, &config).loss
        };
        let logps = read("logps").require_grad();
        let whole = loss_of(0..rows, logps.clone());
        let whole_grad = values(logps.grad(&whole.backward()).unwrap());
        let logps = read("logps").require_grad();
        // Uneven shards: 1 row, then the rest.
        let mut sum = None;
        for r in [0..1, 1..rows] {
            let factor = loss_type.shard_factor(rows, r.len(), tokens(r.clone()), tokens(0..rows));
            let weight = r.len() as f64 / rows as f64;
            let part = loss_of(r, logps.clone()).mul_scalar(factor * weight);
            sum = Some(match sum {
                None => part,
                Some(s) => s + part,
            });
        }
        let sum = sum.unwrap();
        let (a, b): (f64, f64) = (whole.into_scalar().elem(), sum.clone().into_scalar().elem());
        assert!((a - b).abs() < 1e-6, "{loss_type:?}: whole {a}, shards {b}");
        let grad = values(logps.grad(&sum.backward()).unwrap());
        for (x, y) in whole_grad.iter().zip(&grad) {
            assert!((x - y).abs() < 1e-6, "{loss_type:?}: gradient {x} vs {y}");
        }
    }
}
