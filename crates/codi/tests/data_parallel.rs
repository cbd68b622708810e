//! `codi_train --devices cpu,cpu`: two data-parallel replicas of the tiny CODI recipe (LoRA, only
//! the new embedding rows) train to the parameters of one device that accumulates the same
//! micro-batches, and a device count that does not divide the effective batch is refused by key.

use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use latent_codi::config::CodiRunConfig;
use latent_codi::run::{build, micro_batching, train_on, training_examples, TrainOptions};
use latent_core::train::state_dict::module_tensors;
use latent_core::CpuBackend;

type A = Autodiff<CpuBackend>;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `configs/codi/tiny-cpu.yaml` with `overrides`, read from the repository root.
fn tiny(overrides: &[String]) -> CodiRunConfig {
    std::env::set_current_dir(repo()).unwrap();
    CodiRunConfig::load(Path::new("configs/codi/tiny-cpu.yaml"), overrides).unwrap()
}

/// Trains `config` on `replicas` CPU replicas; every parameter by path, the updates and the
/// last epoch's mean loss.
fn train_replicas(
    config: &CodiRunConfig,
    replicas: usize,
) -> (Vec<(String, Vec<f32>)>, usize, f64) {
    let device = Default::default();
    let built = build::<A>(config, &device).unwrap();
    let (examples, _) = training_examples(config, &built).unwrap();
    let devices = vec![device; replicas];
    let (model, report) =
        train_on::<A>(config, built, &examples, &TrainOptions::default(), &devices).unwrap();
    let parameters = module_tensors(&model)
        .into_iter()
        .map(|(path, t)| (path, t.data))
        .collect();
    (parameters, report.updates, report.final_loss)
}

#[test]
fn two_replicas_train_as_one_device_accumulating_their_shards() {
    let out = std::env::temp_dir().join(format!("codi-dp-{}", std::process::id()));
    let config = |name: &str| {
        tiny(&[
            format!("training.output_dir={}", out.join(name).display()),
            "training.per_device_batch_size=2".into(),
            "training.effective_batch_size=4".into(),
            "training.epochs=2".into(),
            "data.max_train_samples=12".into(),
        ])
    };
    // One device: micro-batches of 2, accumulation 2. Two replicas: micro-batches of 4 split
    // 2 + 2, accumulation 1 — the same rows per update, each shard collated as on one device.
    let (one, two) = (config("one"), config("two"));
    assert_eq!(micro_batching(&one, 1).unwrap(), (2, 2));
    assert_eq!(micro_batching(&two, 2).unwrap(), (4, 1));
    let (single, single_updates, single_loss) = train_replicas(&one, 1);
    let (parallel, parallel_updates, parallel_loss) = train_replicas(&two, 2);
    assert_eq!((single_updates, parallel_updates), (6, 6));
    let paths = |p: &[(String, Vec<f32>)]| p.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(paths(&single), paths(&parallel));
    let mut largest = 0.0f32;
    for ((path, a), (_, b)) in single.iter().zip(&parallel) {
        assert_eq!(a.len(), b.len(), "{path}");
        for (x, y) in a.iter().zip(b) {
            largest = largest.max((x - y).abs());
        }
    }
    assert!(largest <= 1e-5, "parameters differ by {largest}");
    assert!(
        (single_loss - parallel_loss).abs() <= 1e-5,
        "loss {single_loss} on one device, {parallel_loss} on two"
    );
    // The first replica saved the final model.
    assert!(out.join("two/final_model").is_dir());
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_device_count_that_does_not_divide_the_effective_batch_is_refused() {
    let config = tiny(&[
        "training.per_device_batch_size=2".into(),
        "training.effective_batch_size=4".into(),
    ]);
    let err = micro_batching(&config, 3).unwrap_err().to_string();
    assert!(err.contains("training.effective_batch_size"), "{err}");
    assert!(err.contains("3 devices"), "{err}");
}
