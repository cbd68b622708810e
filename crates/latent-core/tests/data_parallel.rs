//! Data-parallel training on Burn's collective with two CPU replicas (two peers on the one Flex
//! device, each on its own thread): after K updates with accumulation and clipping the parameters
//! equal a one-device run on the same global micro-batches (within 1e-5), also when the
//! micro-batches split unevenly or a parameter is used by one replica's shard only; a run stopped
//! from the logging replica and resumed from its checkpoint reproduces the uninterrupted one bit
//! for bit; a failure on one replica ends every replica with that failure.

use std::sync::mpsc;
use std::time::Duration;

use burn::backend::Autodiff;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::prelude::*;
use latent_core::train::{
    load_checkpoint, total_updates, train, train_data_parallel, AdamWSettings, CheckpointPolicy,
    DataParallel, GroupedOptimizer, LoopConfig, ParamGroupConfig, Position, ScheduleKind,
    StepIndex, StepLoss, StopFlag, TrainStep, TrainingState, UpdateRecord,
};
use latent_core::{CoreError, CpuBackend};

type AB = Autodiff<CpuBackend>;

#[derive(Module, Debug)]
struct Net<B: Backend> {
    first: Linear<B>,
    second: Linear<B>,
    /// Added to the output of the examples that use it (see [`Mse::offset_rows`]).
    offset: Param<Tensor<B, 1>>,
}

impl<B: Backend> Net<B> {
    /// Fixed weights (no RNG: Burn's generator is global to the process).
    fn new(device: &B::Device) -> Self {
        let linear = |d_in: usize, d_out: usize, salt: usize| {
            let w: Vec<f32> = (0..d_in * d_out)
                .map(|i| (((i + salt) * 7919 % 23) as f32 - 11.0) / 12.0)
                .collect();
            let b: Vec<f32> = (0..d_out).map(|i| (i as f32 - 2.5) / 10.0).collect();
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
            first: linear(3, 6, 0),
            second: linear(6, 2, 5),
            offset: Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![0.3f32, -0.2], [2]),
                device,
            )),
        }
    }

    /// `[n, 3]` → `[n, 2]`.
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.second.forward(self.first.forward(x).tanh())
    }
}

type Batch = (Tensor<AB, 2>, Tensor<AB, 2>);

/// Mean squared error over a micro-batch `(inputs [n, 3], targets [n, 2])`, a mean over its rows.
#[derive(Clone, Default)]
struct Mse {
    /// Add `offset` to the output of the micro-batch's first two rows (on two replicas: set on
    /// replica 0 only, whose shard is those rows).
    offset_rows: bool,
    /// Multiply the loss by NaN at this update (on this replica).
    nan_at: Option<usize>,
}

impl TrainStep<AB, Net<AB>> for Mse {
    type Batch = Batch;
    fn loss(
        &mut self,
        model: &Net<AB>,
        (x, y): &Batch,
        at: StepIndex,
    ) -> latent_core::Result<StepLoss<AB>> {
        let n = x.dims()[0];
        let mut out = model.forward(x.clone());
        if self.offset_rows {
            // Only the micro-batch's first two rows (the first shard of two) use the offset.
            let used = out.clone().narrow(0, 0, 2) + model.offset.val().unsqueeze_dim(0);
            out = if n > 2 {
                Tensor::cat(vec![used, out.narrow(0, 2, n - 2)], 0)
            } else {
                used
            };
        }
        let loss = (out - y.clone()).square().mean();
        let loss = if self.nan_at == Some(at.update) {
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

/// `n` examples in micro-batches of `size`.
fn data(n: usize, size: usize) -> Vec<Batch> {
    let device = Default::default();
    let x: Vec<f32> = (0..n * 3)
        .map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0)
        .collect();
    let y: Vec<f32> = (0..n * 2)
        .map(|i| ((i * 13 % 7) as f32 - 3.0) / 3.0)
        .collect();
    let x = Tensor::<AB, 2>::from_data(TensorData::new(x, [n, 3]), &device);
    let y = Tensor::<AB, 2>::from_data(TensorData::new(y, [n, 2]), &device);
    (0..n / size)
        .map(|b| {
            (
                x.clone().narrow(0, b * size, size),
                y.clone().narrow(0, b * size, size),
            )
        })
        .collect()
}

fn groups() -> Vec<ParamGroupConfig> {
    vec![
        ParamGroupConfig {
            name: "head".into(),
            prefixes: vec!["second".into()],
            lr: 2e-2,
            weight_decay: 0.1,
            schedule: ScheduleKind::Cosine,
            warmup_ratio: 0.2,
        },
        ParamGroupConfig {
            name: "rest".into(),
            prefixes: Vec::new(),
            lr: 1e-2,
            weight_decay: 0.0,
            schedule: ScheduleKind::Linear,
            warmup_ratio: 0.0,
        },
    ]
}

/// A fresh model and optimizer for `total` updates.
fn fresh(total: usize) -> (Net<AB>, GroupedOptimizer<AB, Net<AB>>) {
    let model = Net::<AB>::new(&Default::default());
    let optim = GroupedOptimizer::new(&model, &groups(), &AdamWSettings::default(), total).unwrap();
    (model, optim)
}

fn looped(epochs: usize, accumulation: usize, start: Position) -> LoopConfig {
    LoopConfig {
        epochs,
        accumulation,
        max_grad_norm: Some(0.5),
        start,
    }
}

/// Every parameter, flattened in a fixed order.
fn params(model: &Net<AB>) -> Vec<f32> {
    let mut out = Vec::new();
    for t in [
        model.first.weight.val().into_data(),
        model.first.bias.as_ref().unwrap().val().into_data(),
        model.second.weight.val().into_data(),
        model.second.bias.as_ref().unwrap().val().into_data(),
        model.offset.val().into_data(),
    ] {
        out.extend(t.convert::<f32>().into_vec::<f32>().unwrap());
    }
    out
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn two_cpus() -> DataParallel<burn::backend::flex::FlexDevice> {
    DataParallel::local(vec![Default::default(), Default::default()])
}

/// One device: `train` itself.
fn single(
    batches: &[Batch],
    step: Mse,
    epochs: usize,
    accumulation: usize,
) -> (Vec<f32>, Vec<UpdateRecord>) {
    let (model, mut optim) = fresh(total_updates(epochs, batches.len(), accumulation));
    let (model, records) = train(
        model,
        &mut step.clone(),
        |_| batches.to_vec(),
        &mut optim,
        &looped(epochs, accumulation, Position::default()),
        |_, _, _, _| Ok(()),
    )
    .unwrap();
    (params(&model), records)
}

/// Two replicas on the same global micro-batches; also what the logging replica's callback saw.
fn parallel(
    batches: &[Batch],
    step: impl Fn(usize) -> Mse + Sync,
    epochs: usize,
    accumulation: usize,
) -> (Vec<f32>, Vec<UpdateRecord>, Vec<UpdateRecord>) {
    let (model, mut optim) = fresh(total_updates(epochs, batches.len(), accumulation));
    let mut seen = Vec::new();
    let (model, records) = train_data_parallel(
        &two_cpus(),
        model,
        step,
        |_| batches.to_vec(),
        &mut optim,
        &looped(epochs, accumulation, Position::default()),
        |_, _, r, _| {
            seen.push(r.clone());
            Ok(())
        },
    )
    .unwrap();
    (params(&model), records, seen)
}

/// Same updates, losses, gradient norms and learning rates (within `tol`).
fn assert_same_curve(a: &[UpdateRecord], b: &[UpdateRecord], tol: f64) {
    assert_eq!(a.len(), b.len(), "update counts differ");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            (x.update, x.epoch, x.micro_batches),
            (y.update, y.epoch, y.micro_batches)
        );
        assert!(
            (x.loss - y.loss).abs() < tol,
            "update {}: loss {} vs {}",
            x.update,
            x.loss,
            y.loss
        );
        assert!(
            (x.grad_norm - y.grad_norm).abs() < tol,
            "update {}: |g| {} vs {}",
            x.update,
            x.grad_norm,
            y.grad_norm
        );
        assert!(
            (x.terms[0].1 - y.terms[0].1).abs() < tol,
            "update {}: mse term",
            x.update
        );
        assert_eq!(x.lrs, y.lrs);
    }
}

#[test]
fn two_replicas_match_one_device_on_the_same_global_batches() {
    // 24 examples in global micro-batches of 4 (2 per replica), accumulation 2, 2 epochs: 6
    // updates, clipped to a global norm of 0.5.
    let batches = data(24, 4);
    let (one, one_records) = single(&batches, Mse::default(), 2, 2);
    let (two, two_records, seen) = parallel(&batches, |_| Mse::default(), 2, 2);
    assert_eq!(two_records.len(), 6);
    assert!(
        one_records.iter().any(|r| r.grad_norm > 0.5),
        "clipping is exercised"
    );
    let moved = max_diff(&one, &params(&Net::<AB>::new(&Default::default())));
    assert!(moved > 1e-2, "training moved the parameters by {moved}");
    let diff = max_diff(&one, &two);
    assert!(diff < 1e-5, "two replicas differ from one device by {diff}");
    assert_same_curve(&one_records, &two_records, 1e-5);
    assert_eq!(seen, two_records, "the callback saw the returned records");
}

#[test]
fn uneven_shards_are_weighted_by_their_size() {
    // Micro-batches of 5 split 3 + 2: each shard's mean loss is weighted by its share.
    let batches = data(20, 5);
    let (one, one_records) = single(&batches, Mse::default(), 1, 2);
    let (two, two_records, _) = parallel(&batches, |_| Mse::default(), 1, 2);
    let diff = max_diff(&one, &two);
    assert!(diff < 1e-5, "two replicas differ from one device by {diff}");
    assert_same_curve(&one_records, &two_records, 1e-5);
}

#[test]
fn a_parameter_only_one_shard_uses_gets_the_mean_gradient() {
    // `offset` is used by the first two rows of each micro-batch of 4: on two replicas, only by
    // replica 0, which alone has a gradient for it; replica 1 contributes zero.
    let batches = data(16, 4);
    let step = Mse {
        offset_rows: true,
        ..Mse::default()
    };
    let (one, _) = single(&batches, step.clone(), 1, 2);
    let (two, _, _) = parallel(
        &batches,
        |rank| Mse {
            offset_rows: rank == 0,
            ..Mse::default()
        },
        1,
        2,
    );
    let diff = max_diff(&one, &two);
    assert!(diff < 1e-5, "two replicas differ from one device by {diff}");
    let start = params(&Net::<AB>::new(&Default::default()));
    let offset = one.len() - 2;
    assert!(
        (two[offset] - start[offset]).abs() > 1e-3,
        "offset trained: {} → {}",
        start[offset],
        two[offset]
    );
}

#[test]
fn a_resumed_two_replica_run_reproduces_the_uninterrupted_one() {
    let dir = std::env::temp_dir().join(format!("latent-core-dp-resume-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    let batches = data(20, 4); // 5 micro-batches, accumulation 2 → 3 updates per epoch
    let (epochs, accumulation) = (3, 2);
    let total = total_updates(epochs, batches.len(), accumulation);
    let (full, full_records, _) = parallel(&batches, |_| Mse::default(), epochs, accumulation);

    // The same run, checkpointing every 2 updates; a stop requested (as Ctrl-C would) at
    // update 4 writes checkpoint-4 and ends both replicas.
    let policy = CheckpointPolicy {
        dir: dir.clone(),
        every_updates: 2,
        keep_last: 0,
        per_epoch: false,
    };
    let run_config = serde_json::json!({"devices": "cpu,cpu"});
    let stop = StopFlag::new();
    let (model, mut optim) = fresh(total);
    let mut first = Vec::new();
    let err = train_data_parallel(
        &two_cpus(),
        model,
        |_| Mse::default(),
        |_| batches.clone(),
        &mut optim,
        &looped(epochs, accumulation, Position::default()),
        |m, o, r, position| {
            first.push(r.clone());
            if position.global_step == 4 {
                stop.request();
            }
            let state = TrainingState {
                position,
                best: None,
                extra: serde_json::Value::Null,
            };
            policy.after_update(m, o, &state, &run_config, Some(&stop))
        },
    )
    .unwrap_err();
    match &err {
        CoreError::Interrupted { step, checkpoint } => {
            assert_eq!(*step, 4);
            assert_eq!(checkpoint, &dir.join("checkpoint-4"));
        }
        other => panic!("expected the logging replica's interruption, got {other}"),
    }
    assert_eq!(first.len(), 4, "no update after the stop");

    // A new model and optimizer restored from checkpoint-4, on two replicas again.
    let (model, mut optim) = fresh(total);
    let (model, state) = load_checkpoint(&dir.join("checkpoint-4"), model, &mut optim).unwrap();
    assert_eq!(
        state.position,
        Position {
            epoch: 1,
            next_batch: 2,
            global_step: 4
        }
    );
    let (resumed, rest) = train_data_parallel(
        &two_cpus(),
        model,
        |_| Mse::default(),
        |_| batches.clone(),
        &mut optim,
        &looped(epochs, accumulation, state.position),
        |_, _, _, _| Ok(()),
    )
    .unwrap();
    let curve = |records: &[UpdateRecord]| -> Vec<(usize, u64, u64)> {
        records
            .iter()
            .map(|r| (r.update, r.loss.to_bits(), r.grad_norm.to_bits()))
            .collect()
    };
    let mut joined = first;
    joined.extend(rest);
    assert_eq!(
        curve(&joined),
        curve(&full_records),
        "loss curve differs after resume"
    );
    assert_eq!(
        params(&resumed),
        full,
        "final parameters differ after resume"
    );

    // And the two-replica run is the one-device run.
    let (one, _) = single(&batches, Mse::default(), epochs, accumulation);
    let diff = max_diff(&one, &full);
    assert!(diff < 1e-5, "two replicas differ from one device by {diff}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs `f` on a thread; fails the test if it takes longer than a minute (a replica left
/// waiting in the collective).
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(f()).ok());
    rx.recv_timeout(Duration::from_secs(60))
        .expect("a replica is still waiting in the collective")
}

#[test]
fn a_failure_on_one_replica_ends_every_replica_with_that_failure() {
    let err = within_a_minute(|| {
        let batches = data(16, 4);
        let (model, mut optim) = fresh(4);
        train_data_parallel(
            &two_cpus(),
            model,
            // Replica 1's shard turns NaN at update 1; replica 0 is waiting in the all-reduce.
            |rank| Mse {
                nan_at: (rank == 1).then_some(1),
                ..Mse::default()
            },
            |_| batches.clone(),
            &mut optim,
            &looped(1, 1, Position::default()),
            |_, _, _, _| Ok(()),
        )
        .map(|_| ())
        .unwrap_err()
        .to_string()
    });
    assert!(
        err.contains("loss is NaN") && err.contains("update 1"),
        "{err}"
    );
}

#[test]
fn a_micro_batch_smaller_than_the_replica_count_is_an_error() {
    let err = within_a_minute(|| {
        let batches = data(4, 1);
        let (model, mut optim) = fresh(4);
        train_data_parallel(
            &two_cpus(),
            model,
            |_| Mse::default(),
            |_| batches.clone(),
            &mut optim,
            &looped(1, 1, Position::default()),
            |_, _, _, _| Ok(()),
        )
        .map(|_| ())
        .unwrap_err()
        .to_string()
    });
    assert!(
        err.contains("peer 0 on Cpu") && err.contains("1 examples cannot feed 2 replicas"),
        "{err}"
    );
}
