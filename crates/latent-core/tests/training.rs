//! The shared training loop against the training-loop requirements of `specs/sgdd.md` §5 (1: zero
//! after step / loss divided by accumulation; 2: scheduler total = epochs × ceil(batches / accum);
//! 3: best tracking starts at ±∞ — unit-tested in `train::best`; 4: the last partial window
//! updates; 5: clipping once per update on the accumulated gradient), the lr-0 freeze of a
//! parameter group, and the NaN guard.

use burn::backend::Autodiff;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::prelude::*;
use latent_core::train::{
    global_grad_norm, total_updates, train, AdamWSettings, GroupedOptimizer, LoopConfig,
    ParamGroupConfig, ScheduleKind, StepIndex, StepLoss, TrainStep,
};
use latent_core::{CoreError, CpuBackend};

type AB = Autodiff<CpuBackend>;

#[derive(Module, Debug)]
struct TwoLayers<B: Backend> {
    first: Linear<B>,
    second: Linear<B>,
}

impl<B: Backend> TwoLayers<B> {
    /// Fixed weights (no RNG: tests run in parallel and Burn's RNG is global).
    fn new(device: &B::Device) -> Self {
        let linear = |d_in: usize, d_out: usize, offset: usize| {
            let w: Vec<f32> = (0..d_in * d_out)
                .map(|i| (((i + offset) * 7919 % 17) as f32 - 8.0) / 10.0)
                .collect();
            let b: Vec<f32> = (0..d_out).map(|i| (i as f32 - 1.5) / 10.0).collect();
            Linear {
                weight: Param::from_tensor(Tensor::from_data(
                    TensorData::new(w, [d_in, d_out]),
                    device,
                )),
                bias: Some(Param::from_tensor(Tensor::from_data(
                    TensorData::new(b, [d_out]),
                    device,
                ))),
            }
        };
        Self {
            first: linear(3, 4, 0),
            second: linear(4, 1, 5),
        }
    }

    /// `[n, 3]` → `[n, 1]`.
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.second.forward(self.first.forward(x).tanh())
    }
}

/// Mean squared error of a micro-batch `(inputs [n, 3], targets [n, 1])`.
struct Mse {
    calls: usize,
    nan_at: Option<usize>,
}

type Batch = (Tensor<AB, 2>, Tensor<AB, 2>);

impl TrainStep<AB, TwoLayers<AB>> for Mse {
    type Batch = Batch;
    fn loss(
        &mut self,
        model: &TwoLayers<AB>,
        (x, y): &Batch,
        _at: StepIndex,
    ) -> latent_core::Result<StepLoss<AB>> {
        self.calls += 1;
        let loss = (model.forward(x.clone()) - y.clone()).square().mean();
        let loss = if self.nan_at == Some(self.calls) {
            loss * f64::NAN
        } else {
            loss
        };
        let value: f64 = loss.clone().into_scalar().elem();
        Ok(StepLoss {
            loss,
            terms: vec![("mse".into(), value)],
        })
    }
}

fn mse() -> Mse {
    Mse {
        calls: 0,
        nan_at: None,
    }
}

/// `n` examples in micro-batches of `size`.
fn data(n: usize, size: usize) -> Vec<Batch> {
    let device = Default::default();
    let x: Vec<f32> = (0..n * 3)
        .map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0)
        .collect();
    let y: Vec<f32> = (0..n).map(|i| ((i * 13 % 7) as f32 - 3.0) / 3.0).collect();
    let x = Tensor::<AB, 2>::from_data(TensorData::new(x, [n, 3]), &device);
    let y = Tensor::<AB, 2>::from_data(TensorData::new(y, [n, 1]), &device);
    (0..n / size)
        .map(|b| {
            (
                x.clone().narrow(0, b * size, size),
                y.clone().narrow(0, b * size, size),
            )
        })
        .collect()
}

fn group(name: &str, prefixes: &[&str], lr: f64) -> ParamGroupConfig {
    ParamGroupConfig {
        name: name.into(),
        prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
        lr,
        weight_decay: 0.1,
        schedule: ScheduleKind::Constant,
        warmup_ratio: 0.0,
    }
}

/// A fresh model and its optimizer (one AdamW per group) sized for `total` updates.
fn fresh(
    groups: &[ParamGroupConfig],
    total: usize,
) -> (TwoLayers<AB>, GroupedOptimizer<AB, TwoLayers<AB>>) {
    let model = TwoLayers::<AB>::new(&Default::default());
    let optim = GroupedOptimizer::new(&model, groups, &AdamWSettings::default(), total).unwrap();
    (model, optim)
}

fn looped(
    epochs: usize,
    accumulation: usize,
    max_grad_norm: Option<f64>,
    start: latent_core::train::Position,
) -> LoopConfig {
    LoopConfig {
        epochs,
        accumulation,
        max_grad_norm,
        start,
        precision: Default::default(),
        seed: 0,
    }
}

fn params(model: &TwoLayers<AB>) -> Vec<f32> {
    let mut out = Vec::new();
    for t in [
        model.first.weight.val().into_data(),
        model.first.bias.as_ref().unwrap().val().into_data(),
        model.second.weight.val().into_data(),
    ] {
        out.extend(t.convert::<f32>().into_vec::<f32>().unwrap());
    }
    out
}

fn run(
    batches: Vec<Batch>,
    accumulation: usize,
    epochs: usize,
    groups: &[ParamGroupConfig],
    clip: Option<f64>,
) -> (TwoLayers<AB>, Vec<latent_core::train::UpdateRecord>) {
    let (model, mut optim) = fresh(groups, total_updates(epochs, batches.len(), accumulation));
    let config = looped(epochs, accumulation, clip, Default::default());
    train(
        model,
        &mut mse(),
        |_| batches.clone(),
        &mut optim,
        &config,
        |_, _, _, _| Ok(()),
    )
    .unwrap()
}

#[test]
fn accumulated_micro_batches_equal_one_full_batch() {
    // Requirement 1: four micro-batches of 2 with accumulation 4 make the same single update as one
    // batch of 8 (the micro losses are divided by 4; gradients are cleared after the update).
    let all = &[group("all", &[], 1e-2)];
    let (a, ra) = run(data(8, 2), 4, 1, all, None);
    let (b, rb) = run(data(8, 8), 1, 1, all, None);
    assert_eq!((ra.len(), rb.len()), (1, 1));
    assert!(
        (ra[0].grad_norm - rb[0].grad_norm).abs() < 1e-5,
        "{} vs {}",
        ra[0].grad_norm,
        rb[0].grad_norm
    );
    let diff = params(&a)
        .iter()
        .zip(params(&b))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-6, "parameters differ by {diff}");
    // Two epochs: the second update starts from cleared gradients (same as the full-batch run).
    let (a2, _) = run(data(8, 2), 4, 2, all, None);
    let (b2, _) = run(data(8, 8), 1, 2, all, None);
    let diff = params(&a2)
        .iter()
        .zip(params(&b2))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-5, "second update differs by {diff}");
}

#[test]
fn partial_windows_update_and_totals_match_the_schedule() {
    // Requirements 2 and 4: 5 micro-batches with accumulation 2 → 3 updates per epoch, the last over
    // 1 micro-batch; 2 epochs → 6 = epochs × ceil(batches / accumulation).
    let linear = ParamGroupConfig {
        schedule: ScheduleKind::Linear,
        ..group("all", &[], 1e-2)
    };
    let (_, records) = run(data(10, 2), 2, 2, &[linear], None);
    assert_eq!(records.len(), total_updates(2, 5, 2));
    assert_eq!(records.len(), 6);
    let windows: Vec<usize> = records.iter().map(|r| r.micro_batches).collect();
    assert_eq!(windows, vec![2, 2, 1, 2, 2, 1]);
    // The linear schedule reaches its last step exactly at the last update.
    let last_lr = records.last().unwrap().lrs[0].1;
    assert!((last_lr - 1e-2 / 6.0).abs() < 1e-12, "last lr {last_lr}");
    assert_eq!(records[0].lrs[0].1, 1e-2);
    assert!(records.iter().all(|r| r.terms[0].0 == "mse"));
}

#[test]
fn clipping_uses_the_global_norm_of_the_accumulated_gradient() {
    // Requirement 5: the norm logged (and clipped) is the norm of the accumulated gradient, i.e. of
    // the full-batch gradient, not of any micro-batch.
    let all = &[group("all", &[], 1e-2)];
    let (_, clipped) = run(data(8, 2), 4, 1, all, Some(1e-3));
    let model = TwoLayers::<AB>::new(&Default::default());
    let (x, y) = data(8, 8).remove(0);
    let grads = (model.forward(x) - y).square().mean().backward();
    let full = global_grad_norm::<AB, _>(
        &model,
        &burn::optim::GradientsParams::from_grads(grads, &model),
    );
    assert!(
        (clipped[0].grad_norm - full).abs() < 1e-5,
        "{} vs {full}",
        clipped[0].grad_norm
    );

    let mut g = burn::optim::GradientsParams::from_grads(
        {
            let (x, y) = data(8, 8).remove(0);
            (model.forward(x) - y).square().mean().backward()
        },
        &model,
    );
    let before = latent_core::train::clip_grad_norm::<AB, _>(&model, &mut g, 0.01);
    let after = global_grad_norm::<AB, _>(&model, &g);
    assert!(
        before > 0.01 && (after - 0.01).abs() < 1e-6,
        "clipped to {after}"
    );
}

#[test]
fn a_group_with_lr_zero_stays_bit_identical() {
    let initial = TwoLayers::<AB>::new(&Default::default());
    let groups = [group("frozen", &["first"], 0.0), group("rest", &[], 1e-2)];
    let (trained, records) = run(data(8, 2), 2, 2, &groups, Some(1.0));
    assert_eq!(
        records[0].lrs,
        vec![("frozen".to_string(), 0.0), ("rest".to_string(), 1e-2)]
    );
    let w0 = initial.first.weight.val().into_data();
    let w1 = trained.first.weight.val().into_data();
    assert_eq!(w0.as_bytes(), w1.as_bytes(), "frozen group changed");
    let b0 = initial.first.bias.unwrap().val().into_data();
    assert_eq!(
        b0.as_bytes(),
        trained.first.bias.unwrap().val().into_data().as_bytes()
    );
    assert_ne!(
        initial.second.weight.val().into_data().as_bytes(),
        trained.second.weight.val().into_data().as_bytes(),
        "the other group must train"
    );
}

#[test]
fn non_finite_loss_stops_training_with_its_step() {
    let batches = data(8, 2);
    let (model, mut optim) = fresh(&[group("all", &[], 1e-2)], 4);
    let config = looped(1, 1, None, Default::default());
    let mut updates = 0;
    let err = train(
        model,
        &mut Mse {
            calls: 0,
            nan_at: Some(3),
        },
        |_| batches.clone(),
        &mut optim,
        &config,
        |_, _, _, _| {
            updates += 1;
            Ok(())
        },
    )
    .unwrap_err();
    assert!(matches!(err, CoreError::NonFinite(_)));
    let msg = err.to_string();
    assert!(
        msg.contains("micro-batch 2") && msg.contains("update 2"),
        "{msg}"
    );
    assert_eq!(
        updates, 2,
        "the two good updates happened, the bad one did not"
    );
}

#[test]
fn run_log_writes_metrics_log_and_stats() {
    use latent_core::train::{BestMetric, Direction, RunLog};
    let dir = std::env::temp_dir().join(format!("latent-core-runlog-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    let batches = data(8, 2);
    let groups = [group("head", &["second"], 1e-2), group("rest", &[], 1e-3)];
    let (model, mut optim) = fresh(&groups, 4);
    let config = looped(2, 2, Some(1.0), Default::default());
    let mut log = RunLog::open(&dir, 4, 0, false).unwrap();
    let mut best = BestMetric::new("loss", Direction::Minimize);
    let (_, records) = train(
        model,
        &mut mse(),
        |_| batches.clone(),
        &mut optim,
        &config,
        |_, _, r, _| {
            best.update(r.loss);
            log.update(r, 4)
        },
    )
    .unwrap();
    let stats = log.finish(Some(&best)).unwrap();
    assert_eq!(stats["total_updates"], 4);
    assert_eq!(stats["per_epoch_loss"].as_array().unwrap().len(), 2);
    let first_epoch = (records[0].loss + records[1].loss) / 2.0;
    assert!((stats["per_epoch_loss"][0].as_f64().unwrap() - first_epoch).abs() < 1e-12);
    assert_eq!(stats["best_metric"]["value"].as_f64().unwrap(), best.value);

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[3]["step"], 4);
    assert_eq!(lines[0]["lr/head"], 1e-2);
    assert_eq!(lines[0]["lr/rest"], 1e-3);
    assert!(lines[0]["loss/mse"].is_number() && lines[0]["grad_norm"].is_number());
    let text = std::fs::read_to_string(dir.join("training.log")).unwrap();
    assert_eq!(text.lines().count(), 4);
    assert!(dir.join("training_stats.json").is_file());
    assert_eq!(&std::fs::read(dir.join("loss.png")).unwrap()[1..4], b"PNG");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn interrupted_and_resumed_run_is_bit_identical() {
    use latent_core::train::{load_checkpoint, CheckpointPolicy, Position, TrainingState};
    let dir = std::env::temp_dir().join(format!("latent-core-resume-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    let batches = data(10, 2); // 5 micro-batches, accumulation 2 → 3 updates per epoch
    let groups = [
        ParamGroupConfig {
            schedule: ScheduleKind::Cosine,
            warmup_ratio: 0.2,
            ..group("head", &["second"], 1e-2)
        },
        group("rest", &[], 5e-3),
    ];
    let config = |start| looped(3, 2, Some(0.5), start);
    let total = total_updates(3, 5, 2);
    let run_config = serde_json::json!({"epochs": 3});
    let policy = CheckpointPolicy {
        dir: dir.clone(),
        every_updates: 2,
        keep_last: 2,
        per_epoch: true,
    };

    // Uninterrupted run.
    let (model, mut optim) = fresh(&groups, total);
    let (full_model, full) = train(
        model,
        &mut mse(),
        |_| batches.clone(),
        &mut optim,
        &config(Position::default()),
        |_, _, _, _| Ok(()),
    )
    .unwrap();

    // The same run, checkpointing, "killed" after update 4 (mid-epoch 1).
    let (model, mut optim) = fresh(&groups, total);
    let mut first = Vec::new();
    let err = train(
        model,
        &mut mse(),
        |_| batches.clone(),
        &mut optim,
        &config(Position::default()),
        |m, o, r, position| {
            first.push(r.clone());
            let state = TrainingState {
                position,
                best: None,
                extra: serde_json::json!({"seed": 7}),
            };
            policy.after_update(m, o, &state, &run_config, None)?;
            if position.global_step == 4 {
                return Err(CoreError::NonFinite("simulated interruption".into()));
            }
            Ok(())
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("simulated"));
    let periodic: Vec<usize> = policy
        .periodic()
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(periodic, vec![2, 4], "keep-last-2 of checkpoints 2 and 4");
    assert!(dir.join("epoch_0").join("model.safetensors").is_file());

    // A fresh process: new model and optimizer (new parameter ids), restored from checkpoint-4.
    let (model, mut optim) = fresh(&groups, total);
    let (model, state) =
        load_checkpoint(&policy.latest().unwrap().unwrap(), model, &mut optim).unwrap();
    assert_eq!(
        state.position,
        Position {
            epoch: 1,
            next_batch: 2,
            global_step: 4,
            loss_scale: None,
        }
    );
    assert_eq!(state.extra["seed"], 7);
    let (resumed_model, rest) = train(
        model,
        &mut mse(),
        |_| batches.clone(),
        &mut optim,
        &config(state.position),
        |_, _, _, _| Ok(()),
    )
    .unwrap();

    let curve = |records: &[latent_core::train::UpdateRecord]| -> Vec<(usize, u64, u64)> {
        records
            .iter()
            .map(|r| (r.update, r.loss.to_bits(), r.grad_norm.to_bits()))
            .collect()
    };
    let mut joined = first[..4].to_vec();
    joined.extend(rest);
    assert_eq!(
        curve(&joined),
        curve(&full),
        "loss curve differs after resume"
    );
    assert_eq!(
        params(&resumed_model),
        params(&full_model),
        "final parameters differ after resume"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_stop_request_checkpoints_and_ends_the_run() {
    use latent_core::train::{
        load_checkpoint, CheckpointPolicy, Position, StopFlag, TrainingState,
    };
    let dir = std::env::temp_dir().join(format!("latent-core-stop-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    let batches = data(8, 2);
    let policy = CheckpointPolicy {
        dir: dir.clone(),
        every_updates: 0,
        keep_last: 0,
        per_epoch: false,
    };
    let stop = StopFlag::new();
    let (model, mut optim) = fresh(&[group("all", &[], 1e-2)], 8);
    let config = looped(2, 1, None, Position::default());
    let mut seen = 0;
    let err = train(
        model,
        &mut mse(),
        |_| batches.clone(),
        &mut optim,
        &config,
        |m, o, _, position| {
            seen += 1;
            if seen == 3 {
                stop.request(); // what the Ctrl-C handler does
            }
            let state = TrainingState {
                position,
                best: None,
                extra: serde_json::Value::Null,
            };
            policy.after_update(m, o, &state, &serde_json::Value::Null, Some(&stop))
        },
    )
    .unwrap_err();
    match &err {
        CoreError::Interrupted { step, checkpoint } => {
            assert_eq!(*step, 3);
            assert_eq!(checkpoint, &dir.join("checkpoint-3"));
        }
        other => panic!("expected an interruption, got {other}"),
    }
    assert_eq!(seen, 3, "no update after the stop request");
    let (model, mut optim) = fresh(&[group("all", &[], 1e-2)], 8);
    let (_, state) = load_checkpoint(&dir.join("checkpoint-3"), model, &mut optim).unwrap();
    assert_eq!(
        state.position,
        Position {
            epoch: 0,
            next_batch: 3,
            global_step: 3,
            loss_scale: None,
        }
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bf16_parameters_train_through_the_same_loop() {
    // Requirement 7: low precision uses the same code path: only the parameters' dtype changes.
    use burn::tensor::DType;
    let device = Default::default();
    let f32_model = TwoLayers::<AB>::new(&device);
    let cast = |l: &Linear<AB>| Linear {
        weight: Param::from_tensor(l.weight.val().cast(DType::BF16).detach().require_grad()),
        bias: l
            .bias
            .as_ref()
            .map(|b| Param::from_tensor(b.val().cast(DType::BF16).detach().require_grad())),
    };
    let model = TwoLayers {
        first: cast(&f32_model.first),
        second: cast(&f32_model.second),
    };
    let bf16 = |(x, y): Batch| (x.cast(DType::BF16), y.cast(DType::BF16));
    let batches: Vec<Batch> = data(8, 2).into_iter().map(bf16).collect();
    let mut optim = GroupedOptimizer::new(
        &model,
        &[group("all", &[], 1e-2)],
        &AdamWSettings::default(),
        8,
    )
    .unwrap();
    let config = looped(2, 1, Some(1.0), Default::default());
    let (trained, records) = train(
        model,
        &mut mse(),
        |_| batches.clone(),
        &mut optim,
        &config,
        |_, _, _, _| Ok(()),
    )
    .unwrap();
    assert_eq!(records.len(), 8);
    assert!(records
        .iter()
        .all(|r| r.loss.is_finite() && r.grad_norm.is_finite()));
    assert_eq!(trained.first.weight.val().dtype(), DType::BF16);
    let before = f32_model
        .second
        .weight
        .val()
        .cast(DType::BF16)
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .unwrap();
    let after = trained
        .second
        .weight
        .val()
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .unwrap();
    assert_ne!(before, after, "bf16 parameters must be updated");
}

#[test]
fn validation_runs_each_epoch_on_larger_batches_and_tracks_the_logged_key() {
    // Requirement 8: validation every epoch, with a larger batch than training, and the best
    // checkpoint chosen by exactly the key that is logged.
    use latent_core::train::{
        BestMetric, CheckpointPolicy, Direction, Position, RunLog, TrainingState,
    };
    let dir = std::env::temp_dir().join(format!("latent-core-valid-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    let train_batches = data(8, 2);
    let (vx, vy) = data(8, 8).remove(0); // validation batch of 8 > training micro-batch of 2
    let policy = CheckpointPolicy {
        dir: dir.clone(),
        every_updates: 0,
        keep_last: 0,
        per_epoch: false,
    };
    let (model, mut optim) = fresh(&[group("all", &[], 5e-2)], 12);
    let config = looped(3, 1, None, Position::default());
    let mut log = RunLog::open(&dir, 12, 0, false).unwrap();
    let mut best = BestMetric::new("valid/loss", Direction::Minimize);
    let mut evaluations = Vec::new();
    let (model, _) = train(
        model,
        &mut mse(),
        |_| train_batches.clone(),
        &mut optim,
        &config,
        |m, o, r, position| {
            log.update(r, 2)?;
            if position.next_batch == 0 {
                let loss: f64 = (m.forward(vx.clone()) - vy.clone())
                    .square()
                    .mean()
                    .into_scalar()
                    .elem();
                let logged = vec![("valid/loss".to_string(), loss)];
                log.metrics(position.global_step, &logged)?;
                let mut state = TrainingState {
                    position,
                    best: None,
                    extra: serde_json::Value::Null,
                };
                policy.after_evaluation(
                    m,
                    o,
                    &mut state,
                    &serde_json::Value::Null,
                    &mut best,
                    &logged,
                )?;
                evaluations.push(loss);
            }
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(evaluations.len(), 3, "one validation per epoch");
    assert_eq!(
        best.value,
        evaluations.iter().copied().fold(f64::INFINITY, f64::min)
    );
    let logged: Vec<f64> = std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()[best.key.as_str()].as_f64()
        })
        .collect();
    assert_eq!(logged, evaluations, "the compared key is the logged key");
    assert!(dir.join("best").join("model.safetensors").is_file());
    let state = TrainingState {
        position: Position {
            epoch: 3,
            next_batch: 0,
            global_step: 12,
            loss_scale: None,
        },
        best: Some(best),
        extra: serde_json::Value::Null,
    };
    policy
        .save_final(&model, &optim, &state, &serde_json::Value::Null)
        .unwrap();
    assert!(dir.join("final").join("training_state.json").is_file());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn groups_that_select_nothing_or_leave_a_parameter_out_are_errors() {
    let model = TwoLayers::<AB>::new(&Default::default());
    let err = GroupedOptimizer::new(
        &model,
        &[group("typo", &["thrid"], 1e-2), group("rest", &[], 1e-2)],
        &AdamWSettings::default(),
        4,
    )
    .err()
    .expect("a prefix that matches nothing");
    let text = err.to_string();
    assert!(text.contains("typo") && text.contains("thrid"), "{text}");
    let err = GroupedOptimizer::new(
        &model,
        &[group("first", &["first"], 1e-2)],
        &AdamWSettings::default(),
        4,
    )
    .err()
    .expect("a trainable parameter in no group");
    assert!(err.to_string().contains("second.weight"), "{err}");
    // A frozen parameter may stay out of every group.
    let frozen = TwoLayers {
        second: model.second.clone().no_grad(),
        ..model
    };
    assert!(GroupedOptimizer::new(
        &frozen,
        &[group("first", &["first"], 1e-2)],
        &AdamWSettings::default(),
        4
    )
    .is_ok());
}

#[test]
fn adamw_moments_advance_at_learning_rate_zero() {
    // Warm-up: update 0 runs at lr 0. PyTorch still updates the moments and the step count, so
    // update 1 sees the first gradient in its moments; the parameters do not move at update 0.
    let warm = ParamGroupConfig {
        schedule: ScheduleKind::Linear,
        warmup_ratio: 0.5,
        ..group("all", &[], 1e-2)
    };
    let (model, mut optim) = fresh(std::slice::from_ref(&warm), 2);
    let before = params(&model);
    let batches = data(4, 2);
    let config = looped(1, 1, None, Default::default());
    let mut after_first = None;
    train(
        model,
        &mut mse(),
        |_| batches[..1].to_vec(),
        &mut optim,
        &config,
        |model, optim, record, _| {
            assert_eq!(record.lrs[0].1, 0.0);
            after_first = Some((params(model), optim.state_tensors(model)));
            Ok(())
        },
    )
    .unwrap();
    let (values, state) = after_first.unwrap();
    assert_eq!(values, before, "lr 0 leaves parameters bit-identical");
    assert!(
        state.steps.values().all(|&t| t == 1) && !state.steps.is_empty(),
        "{:?}",
        state.steps
    );
    let m1 = &state
        .tensors
        .iter()
        .find(|(k, _)| k == "first.weight.moment_1")
        .unwrap()
        .1;
    assert!(
        m1.data.iter().any(|&x| x != 0.0),
        "first moment holds (1 − β₁)·g"
    );
}

/// Records where each micro-batch is in the run.
struct Where {
    inner: Mse,
    seen: Vec<StepIndex>,
}

impl TrainStep<AB, TwoLayers<AB>> for Where {
    type Batch = Batch;
    fn loss(
        &mut self,
        model: &TwoLayers<AB>,
        batch: &Batch,
        at: StepIndex,
    ) -> latent_core::Result<StepLoss<AB>> {
        self.seen.push(at);
        self.inner.loss(model, batch, at)
    }
}

#[test]
fn the_loss_sees_its_update_epoch_and_micro_batch() {
    let batches = data(8, 2);
    let all = &[group("all", &[], 1e-2)];
    let (model, mut optim) = fresh(all, total_updates(2, 4, 2));
    let mut step = Where {
        inner: mse(),
        seen: Vec::new(),
    };
    train(
        model,
        &mut step,
        |_| batches.clone(),
        &mut optim,
        &looped(2, 2, None, Default::default()),
        |_, _, _, _| Ok(()),
    )
    .unwrap();
    let triples: Vec<(usize, usize, usize)> = step
        .seen
        .iter()
        .map(|s| (s.update, s.epoch, s.micro_batch))
        .collect();
    assert_eq!(
        triples,
        [
            (0, 0, 0),
            (0, 0, 1),
            (1, 0, 2),
            (1, 0, 3),
            (2, 1, 0),
            (2, 1, 1),
            (3, 1, 2),
            (3, 1, 3)
        ]
    );
}
