//! Mixed precision in the shared loop (`train::precision`): f32 master weights keep the small
//! updates that bf16 parameters lose, bf16 follows the f32 loss curve of a tiny language model, f16's
//! loss scale skips overflowing updates and unscales the gradients, and frozen parameters stay in
//! the compute dtype.

use burn::backend::Autodiff;
use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::DType;
use latent_core::train::precision::{master_copy, working_copy};
use latent_core::train::state_dict::module_tensors;
use latent_core::train::{
    train, AdamWSettings, GroupedOptimizer, LoopConfig, ParamGroupConfig, Position, Precision,
    ScheduleKind, StepIndex, StepLoss, TrainStep, UpdateRecord,
};
use latent_core::{CausalLm, CpuBackend, LmInput, ModelConfig};

type AB = Autodiff<CpuBackend>;

/// `y = x · w` with `w` `[4, 1]`, plus a frozen offset.
#[derive(Module, Debug)]
struct Probe<B: Backend> {
    w: Param<Tensor<B, 2>>,
    offset: Param<Tensor<B, 1>>,
}

impl<B: Backend> Probe<B> {
    /// Every weight 0.02 (a bf16 ulp of ~1.2e-4 there), in `dtype`.
    fn new(dtype: DType, device: &B::Device) -> Self {
        let w = Tensor::<B, 2>::from_data(TensorData::new(vec![0.02f32; 4], [4, 1]), device);
        let offset = Tensor::<B, 1>::from_data(TensorData::new(vec![0.5f32], [1]), device);
        Self {
            w: Param::from_tensor(w.cast(dtype)),
            offset: Param::from_tensor(offset.cast(dtype)).set_require_grad(false),
        }
    }

    /// `[n, 4]` → `[n, 1]`.
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        x.cast(self.w.val().dtype()).matmul(self.w.val()) + self.offset.val().unsqueeze()
    }
}

/// `scale · mean(y)`: a constant gradient, so AdamW moves every weight by about lr per update.
struct MeanOutput {
    scale: f64,
}

impl TrainStep<AB, Probe<AB>> for MeanOutput {
    type Batch = Tensor<AB, 2>;
    fn loss(
        &mut self,
        model: &Probe<AB>,
        x: &Self::Batch,
        _at: StepIndex,
    ) -> latent_core::Result<StepLoss<AB>> {
        let loss = model.forward(x.clone()).mean() * self.scale;
        Ok(StepLoss {
            loss,
            terms: vec![],
        })
    }
}

fn group(lr: f64) -> ParamGroupConfig {
    ParamGroupConfig {
        name: "all".into(),
        prefixes: vec![],
        lr,
        weight_decay: 0.0,
        schedule: ScheduleKind::Constant,
        warmup_ratio: 0.0,
    }
}

fn looped(precision: Precision, start: Position) -> LoopConfig {
    LoopConfig {
        epochs: 1,
        accumulation: 1,
        max_grad_norm: None,
        start,
        precision,
        seed: 0,
    }
}

/// Runs `updates` updates of [`MeanOutput`] at `lr` on a probe whose parameters are `dtype`;
/// returns the trained probe and the records.
fn run_probe(
    dtype: DType,
    precision: Precision,
    lr: f64,
    scale: f64,
    updates: usize,
) -> (Probe<AB>, Vec<UpdateRecord>) {
    let device = Default::default();
    let model = Probe::<AB>::new(dtype, &device);
    let mut optim =
        GroupedOptimizer::new(&model, &[group(lr)], &AdamWSettings::default(), updates).unwrap();
    let x = Tensor::<AB, 2>::ones([2, 4], &device);
    let batches = vec![x; updates];
    train(
        model,
        &mut MeanOutput { scale },
        |_| batches.clone(),
        &mut optim,
        &looped(precision, Position::default()),
        |_, _, _, _| Ok(()),
    )
    .unwrap()
}

fn weights(probe: &Probe<AB>) -> Vec<f32> {
    probe
        .w
        .val()
        .into_data()
        .convert::<f32>()
        .into_vec()
        .unwrap()
}

/// At lr 2e-5, 20 AdamW updates of a weight at 0.02 move it by ~4e-4 in f32. With bf16 parameters
/// each update (2e-5) is below half an ulp and rounds away: the weight never moves. With bf16
/// compute and f32 master weights it moves as in f32.
#[test]
fn master_weights_keep_updates_that_bf16_parameters_round_away() {
    let (lr, updates) = (2e-5, 20);
    let expected = lr * updates as f64;
    let (f32_run, _) = run_probe(DType::F32, Precision::F32, lr, 1.0, updates);
    let (bf16_only, _) = run_probe(DType::BF16, Precision::F32, lr, 1.0, updates);
    let (mixed, _) = run_probe(DType::F32, Precision::Bf16, lr, 1.0, updates);
    let moved = |p: &Probe<AB>| weights(p).iter().map(|w| (0.02 - w) as f64).sum::<f64>() / 4.0;
    assert!(
        (moved(&f32_run) - expected).abs() < 0.05 * expected,
        "f32 moves by {} (expected {expected})",
        moved(&f32_run)
    );
    assert_eq!(
        moved(&bf16_only),
        (0.02 - f32::from(half::bf16::from_f32(0.02))) as f64,
        "bf16 parameters lose every update"
    );
    assert_eq!(mixed.w.val().dtype(), DType::F32, "the master stays f32");
    assert!(
        (moved(&mixed) - expected).abs() < 0.05 * expected,
        "bf16 with master weights moves by {} (expected {expected})",
        moved(&mixed)
    );
}

/// A residual-like module: a weight and a Λ the model code uses in f32.
#[derive(Module, Debug)]
struct Gated<B: Backend> {
    w: Param<Tensor<B, 2>>,
    lambda: Param<Tensor<B, 1>>,
}

/// The master copy holds trainable parameters in f32 and frozen ones in the compute dtype; the
/// working copy casts everything but Λ (`KEPT_IN_F32`) to the compute dtype.
#[test]
fn frozen_parameters_stay_in_the_compute_dtype() {
    let device = Default::default();
    let gated = Gated::<AB> {
        w: Param::from_tensor(Tensor::ones([2, 2], &device)),
        lambda: Param::from_tensor(Tensor::ones([2], &device)),
    };
    let working = working_copy(&master_copy(gated, Precision::Bf16), Precision::Bf16);
    assert_eq!(working.w.val().dtype(), DType::BF16);
    assert_eq!(working.lambda.val().dtype(), DType::F32);
    assert!(working.w.val().is_require_grad() && working.lambda.val().is_require_grad());
    let probe = Probe::<AB>::new(DType::F32, &Default::default());
    let master = master_copy(probe, Precision::Bf16);
    assert_eq!(master.w.val().dtype(), DType::F32);
    assert_eq!(master.offset.val().dtype(), DType::BF16);
    assert!(!master.offset.val().is_require_grad());
    let (trained, _) = run_probe(DType::F32, Precision::F16, 1e-3, 1.0, 3);
    assert_eq!(trained.offset.val().dtype(), DType::F16);
}

/// f16: a loss whose scaled gradients overflow f16 skips updates (parameters unchanged) and halves
/// the scale until they fit; the logged gradient norm is the unscaled one (that of an f32 run).
#[test]
fn f16_loss_scale_skips_overflowing_updates_and_unscales_gradients() {
    // d loss / d w = scale · mean over rows of x = 100 per weight; × 2¹⁶ overflows f16 (max 65504)
    // until the scale is 2⁹.
    let (lr, updates, scale) = (1e-3, 12, 100.0);
    let (f16_run, records) = run_probe(DType::F32, Precision::F16, lr, scale, updates);
    let (_, f32_records) = run_probe(DType::F32, Precision::F32, lr, scale, updates);
    let skipped: Vec<bool> = records.iter().map(|r| r.skipped).collect();
    assert_eq!(
        skipped,
        [vec![true; 7], vec![false; 5]].concat(),
        "scales 2^16..2^10 overflow, 2^9 fits"
    );
    assert_eq!(records[0].loss_scale, Some(65536.0));
    assert_eq!(records[7].loss_scale, Some(512.0));
    for (r, f) in records[7..].iter().zip(&f32_records) {
        assert!(
            (r.grad_norm - f.grad_norm).abs() < 1e-3 * f.grad_norm,
            "update {}: |g| {} vs f32 {}",
            r.update,
            r.grad_norm,
            f.grad_norm
        );
    }
    // Five real AdamW steps of ~lr each.
    let moved = weights(&f16_run)
        .iter()
        .map(|w| (0.02 - w) as f64)
        .sum::<f64>()
        / 4.0;
    assert!((moved - 5.0 * lr).abs() < 0.05 * 5.0 * lr, "moved {moved}");
}

/// Next-token CE of a tiny Qwen2-style model on fixed ids.
struct NextToken;

impl TrainStep<AB, CausalLm<AB>> for NextToken {
    type Batch = Tensor<AB, 2, Int>;
    fn loss(
        &mut self,
        model: &CausalLm<AB>,
        ids: &Self::Batch,
        _at: StepIndex,
    ) -> latent_core::Result<StepLoss<AB>> {
        let [b, s] = ids.dims();
        let logits = model.forward(LmInput::ids(ids.clone()))?.logits;
        let v = logits.dims()[2];
        let logits = latent_core::model::to_f32(logits)
            .slice([0..b, 0..s - 1])
            .reshape([b * (s - 1), v]);
        let targets = ids.clone().slice([0..b, 1..s]).reshape([b * (s - 1)]);
        let loss = burn::nn::loss::CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits, targets);
        Ok(StepLoss {
            loss,
            terms: vec![],
        })
    }
}

/// bf16 (f32 master weights) follows the f32 loss curve of a tiny language model within 2% per
/// update over 30 updates, and the final losses are within 2% of each other.
#[test]
fn bf16_follows_the_f32_loss_curve_of_a_tiny_lm() {
    let text = r#"{"model_type": "qwen2", "vocab_size": 64, "hidden_size": 32,
        "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 32, "tie_word_embeddings": false}"#;
    let config = ModelConfig::from_json_str(text, std::path::Path::new("config.json")).unwrap();
    let device = Default::default();
    let model = CausalLm::<AB>::new(&config, &device);
    // Initialise the lazy parameters once, so both runs start from the same weights.
    let _ = module_tensors(&model);
    let batches: Vec<Tensor<AB, 2, Int>> = (0..30)
        .map(|k| {
            let ids: Vec<i64> = (0..4 * 12).map(|i| ((i * 7 + k * 3) % 64) as i64).collect();
            Tensor::from_data(TensorData::new(ids, [4, 12]), &device)
        })
        .collect();
    let run = |precision: Precision| {
        let mut optim =
            GroupedOptimizer::new(&model, &[group(3e-3)], &AdamWSettings::default(), 30).unwrap();
        let (_, records) = train(
            model.clone(),
            &mut NextToken,
            |_| batches.clone(),
            &mut optim,
            &LoopConfig {
                max_grad_norm: Some(1.0),
                ..looped(precision, Position::default())
            },
            |_, _, _, _| Ok(()),
        )
        .unwrap();
        records.iter().map(|r| r.loss).collect::<Vec<f64>>()
    };
    let full = run(Precision::F32);
    let mixed = run(Precision::Bf16);
    assert!(full[29] < 0.8 * full[0], "the model learns: {full:?}");
    for (u, (f, m)) in full.iter().zip(&mixed).enumerate() {
        assert!(
            (f - m).abs() < 0.02 * f,
            "update {u}: f32 {f:.4} vs bf16 {m:.4}"
        );
    }
}
