//! The whole pipeline on the tiny BERT fixture and the shipped samples (`configs/sgdd/test_tiny.yaml`):
//! training on the shared loop with validation and checkpoints, an exact resume that continues the
//! logged steps, a stop during a validation resumed exactly, a phase 2 warm start from a phase 1
//! checkpoint, the export loaded back for decoding with identical logits, and two data-parallel
//! replicas training as one device.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use latent_core::CpuBackend;
use sgdd_diffusion::config::{RunConfig, Task};
use sgdd_diffusion::data::{split_pairs, Examples};
use sgdd_diffusion::decoder::EmbeddingInit;
use sgdd_diffusion::diffusion::{float_tensor, ids_tensor};
use sgdd_diffusion::eval::{eval_loss, generate_texts};
use sgdd_diffusion::train::{
    build_model, export_model, load_trained, run_training, run_training_on,
};

type B = CpuBackend;

fn config(out: &Path, extra: &[&str]) -> RunConfig {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut overrides = vec![
        format!("encoder={}", root.join("tests/fixtures/bert").display()),
        format!("train.out_dir={}", out.display()),
        "model.max_len=24".to_string(),
    ];
    overrides.extend(extra.iter().map(|s| s.to_string()));
    RunConfig::load(root.join("../../configs/sgdd/test_tiny.yaml"), &overrides).unwrap()
}

/// One test at a time: Burn's generator is global to the process and building or loading a model
/// draws from it outside any lock (lazy initial values), which would change another test's
/// draws in the middle of its run; the exact-resume comparisons need runs alone in the process.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sgdd-pipeline-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    dir
}

fn steps_logged(dir: &Path) -> Vec<u64> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("loss").is_some())
        .map(|v| v["step"].as_u64().unwrap())
        .collect()
}

#[test]
fn trains_validates_checkpoints_and_exports() {
    let _serial = serial();
    let out = tmp("train");
    let config = config(&out, &["train.epochs=3", "train.lr=0.01"]);
    let device = Default::default();
    let outcome =
        run_training::<burn::backend::Autodiff<B>>(&config, None, &device, false, None).unwrap();
    let per_epoch = outcome.updates / 3;
    assert!(per_epoch > 0 && outcome.updates == 3 * per_epoch);
    for d in ["best", "final", "export"] {
        assert!(
            out.join(d).join("model.safetensors").is_file(),
            "{d} missing"
        );
    }
    assert!(out.join("samples_epoch2.jsonl").is_file());
    assert_eq!(outcome.best.key, "valid/loss");
    let keys: Vec<&str> = outcome.last_valid.iter().map(|(k, _)| k.as_str()).collect();
    for k in [
        "valid/loss",
        "valid/nonpad_loss",
        "valid/ppl_bound",
        "valid/exact_match",
        "valid/sentence_bleu",
        "valid/corpus_bleu",
        "valid/cosine",
    ] {
        assert!(keys.contains(&k), "{k} not logged: {keys:?}");
    }
    // The trained model beats its own initialisation on held-out masked CE.
    let (config2, encoder, trained) = load_trained::<B>(&out.join("export"), &[], &device).unwrap();
    assert_eq!(config2, config);
    let (_, valid) = split_pairs(&config).unwrap();
    let valid = Examples::build(valid, &encoder, &config, None, &device).unwrap();
    let fresh = build_model::<B, B>(&config, &encoder, config.model.embedding_init, &device);
    let before = eval_loss(&fresh, &valid, 16, 7, None).unwrap().masked_ce;
    let after = eval_loss(&trained, &valid, 16, 7, None).unwrap().masked_ce;
    assert!(
        after < before - 0.3,
        "held-out masked CE {before} -> {after}"
    );
    // The export reproduces the final checkpoint's logits exactly.
    let (_, _, from_final) = load_trained::<B>(&out.join("final"), &[], &device).unwrap();
    let ids = ids_tensor::<B>(&[2, 4, 4, 9, 3, 0], 1, 6, &device);
    let t = float_tensor::<B, 1>(vec![0.5], [1], &device);
    let cond = float_tensor::<B, 2>(valid.cond[0].clone(), [1, valid.cond[0].len()], &device);
    let a = trained.forward(
        ids.clone(),
        t.clone(),
        cond.clone(),
        Tensor::zeros([1], &device),
    );
    let b = from_final.forward(ids, t, cond, Tensor::zeros([1], &device));
    assert_eq!(a.into_data(), b.into_data());
    // A model without the position table (trained before it existed) needs the override to load,
    // and the error says so.
    let rope_only = out.join("rope_only");
    let mut rope_config = config.clone();
    rope_config.model.absolute_positions = false;
    let rope_model = build_model::<B, B>(&rope_config, &encoder, EmbeddingInit::Random, &device);
    let mut saved = serde_json::to_value(&rope_config).unwrap();
    saved["model"]
        .as_object_mut()
        .unwrap()
        .remove("absolute_positions");
    export_model(&rope_model, &saved, &rope_only).unwrap();
    let err = match load_trained::<B>(&rope_only, &[], &device) {
        Ok(_) => panic!("loading without the override must fail"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("positions.weight") && err.contains("--set model.absolute_positions=false"),
        "{err}"
    );
    let overrides = [
        "model.absolute_positions=false".to_string(),
        "decode.cfg_scale=0".to_string(),
    ];
    let (loaded_config, _, _) = load_trained::<B>(&rope_only, &overrides, &device).unwrap();
    assert!(!loaded_config.model.absolute_positions);
    assert_eq!(loaded_config.decode.cfg_scale, 0.0);
    let (texts, vectors) = generate_texts(
        &trained,
        &encoder,
        &valid.cond[..2],
        24,
        &config.decode,
        2,
        None,
    )
    .unwrap();
    assert_eq!((texts.len(), vectors.len()), (2, 2));
    std::fs::remove_dir_all(out).ok();
}

/// `metrics.jsonl` without its timings.
fn metrics_logged(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let map = v.as_object_mut().unwrap();
            map.remove("tokens_per_s");
            map.remove("elapsed_s");
            v
        })
        .collect()
}

#[test]
fn a_stop_during_validation_checkpoints_and_the_resumed_run_validates_first() {
    let _serial = serial();
    // One update per epoch (accumulation over the whole epoch), so the first update ends epoch 0 and
    // its validation is the first thing to see the (already raised) stop.
    let extra = ["train.epochs=2", "train.accumulation=1000"];
    let device = Default::default();
    let whole = tmp("stop-whole");
    let full = run_training::<burn::backend::Autodiff<B>>(
        &config(&whole, &extra),
        None,
        &device,
        false,
        None,
    )
    .unwrap();
    assert_eq!(full.updates, 2);

    let out = tmp("stop-validation");
    let stop = latent_core::train::StopFlag::new();
    stop.request();
    let Err(err) = run_training::<burn::backend::Autodiff<B>>(
        &config(&out, &extra),
        None,
        &device,
        false,
        Some(&stop),
    ) else {
        panic!("the run was not interrupted");
    };
    let checkpoint = out.join("checkpoint-1");
    assert!(
        err.to_string().contains(&checkpoint.display().to_string()),
        "{err}"
    );
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(checkpoint.join("training_state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["extra"]["evaluation_pending"], true, "{state}");
    assert!(
        !out.join("samples_epoch0.jsonl").exists(),
        "validation was cut short"
    );

    let resumed = run_training::<burn::backend::Autodiff<B>>(
        &config(&out, &extra),
        Some(&checkpoint),
        &device,
        false,
        None,
    )
    .unwrap();
    assert_eq!(resumed.updates, 1);
    assert_eq!(metrics_logged(&out), metrics_logged(&whole));
    assert_eq!(resumed.best, full.best);
    assert_eq!(resumed.last_valid, full.last_valid);
    for dir in ["best", "final"] {
        let bytes = |root: &Path| std::fs::read(root.join(dir).join("model.safetensors")).unwrap();
        assert!(
            bytes(&out) == bytes(&whole),
            "{dir}/model.safetensors differs"
        );
    }
    std::fs::remove_dir_all(out).ok();
    std::fs::remove_dir_all(whole).ok();
}

#[test]
fn resume_continues_and_phase2_warm_starts_from_phase1() {
    let _serial = serial();
    let out = tmp("resume");
    let device = Default::default();
    let one = config(&out, &["train.epochs=1", "train.eval_generate=0"]);
    let first =
        run_training::<burn::backend::Autodiff<B>>(&one, None, &device, false, None).unwrap();
    let two = config(&out, &["train.epochs=2", "train.eval_generate=0"]);
    let second = run_training::<burn::backend::Autodiff<B>>(
        &two,
        Some(&out.join("final")),
        &device,
        false,
        None,
    )
    .unwrap();
    assert_eq!(
        second.updates, first.updates,
        "the resumed run does epoch 2 only"
    );
    let steps = steps_logged(&out);
    let want: Vec<u64> = (1..=2 * first.updates as u64).collect();
    assert_eq!(steps, want, "logged steps continue across the resume");
    // The resumed run ends with exactly the weights of one uninterrupted 2-epoch run: its AdamW
    // moments and step count, not only the weights, were restored (fresh moments would make the
    // first resumed update a sign step of size lr).
    let whole = tmp("resume-whole");
    run_training::<burn::backend::Autodiff<B>>(
        &config(&whole, &["train.epochs=2", "train.eval_generate=0"]),
        None,
        &device,
        false,
        None,
    )
    .unwrap();
    let bytes = |root: &Path| std::fs::read(root.join("final/model.safetensors")).unwrap();
    assert!(
        bytes(&out) == bytes(&whole),
        "resumed weights differ from the uninterrupted run"
    );
    let nonpad_logged = std::fs::read_to_string(whole.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("loss").is_some())
        .all(|v| {
            v["loss/masked_ce_nonpad"]
                .as_f64()
                .is_some_and(f64::is_finite)
        });
    assert!(
        nonpad_logged,
        "loss/masked_ce_nonpad missing from an update"
    );
    std::fs::remove_dir_all(whole).ok();

    // That continuation is exact only because test_tiny's schedule is constant without warm-up.
    // A finished cosine run resumed with 2 epochs would go on along a cosine fitted to 2 epochs
    // whose first epoch it never trained: refused, naming the schedule.
    let cosine = tmp("resume-cosine");
    let cos = |epochs: &str| {
        config(
            &cosine,
            &[epochs, "train.eval_generate=0", "train.schedule=cosine"],
        )
    };
    run_training::<burn::backend::Autodiff<B>>(&cos("train.epochs=1"), None, &device, false, None)
        .unwrap();
    let err = run_training::<burn::backend::Autodiff<B>>(
        &cos("train.epochs=2"),
        Some(&cosine.join("final")),
        &device,
        false,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("scheduler.json") && err.contains("Cosine"),
        "{err}"
    );
    std::fs::remove_dir_all(cosine).ok();

    // Phase 2 (another task, longer sequences as QQP needs) from the phase 1 checkpoint: weights
    // only, fresh position; the position table grows from 24 to 32 rows.
    let p2 = tmp("phase2");
    let qqp = config(
        &p2,
        &[
            "task=qqp_paraphrase",
            "data.train_file=sample:qqp/test_sample.jsonl",
            "train.epochs=1",
            "train.eval_generate=0",
            "train.lr=0.0",
            "model.max_len=32",
        ],
    );
    assert_eq!(qqp.task, Task::QqpParaphrase);
    let outcome = run_training::<burn::backend::Autodiff<B>>(
        &qqp,
        Some(&out.join("final")),
        &device,
        false,
        None,
    )
    .unwrap();
    assert!(outcome.updates > 0);
    let log = std::fs::read_to_string(p2.join("training.log")).unwrap();
    assert!(log.contains("warm start"), "{log}");
    // With lr 0 the phase 2 model is exactly the phase 1 model.
    let (_, _, m1) = load_trained::<B>(&out.join("final"), &[], &device).unwrap();
    let (_, _, m2) = load_trained::<B>(&p2.join("export"), &[], &device).unwrap();
    let w1 = m1.embed.weight.val().into_data();
    let w2 = m2.embed.weight.val().into_data();
    assert_eq!(w1, w2);
    let p1 = m1.positions.as_ref().unwrap().weight.val();
    let p2_table = m2.positions.as_ref().unwrap().weight.val();
    assert_eq!((p1.dims(), p2_table.dims()), ([24, 32], [32, 32]));
    assert_eq!(
        p2_table.slice([0..24, 0..32]).into_data(),
        p1.into_data(),
        "the saved rows are copied"
    );
    std::fs::remove_dir_all(out).ok();
    std::fs::remove_dir_all(p2).ok();
}

#[test]
fn initial_weights_follow_the_seed() {
    let _serial = serial();
    let device = Default::default();
    let base = config(&tmp("seeded"), &[]);
    let encoder =
        sgdd_diffusion::encoder::SemanticEncoder::<B>::load(&base.encoder_path().unwrap(), &device)
            .unwrap();
    let weights = |c: &RunConfig| {
        let m = build_model::<B, B>(c, &encoder, EmbeddingInit::Random, &device);
        (m.null.val().into_data(), m.project.weight.val().into_data())
    };
    assert_eq!(weights(&base), weights(&base));
    let mut other = base.clone();
    other.train.seed += 1;
    assert_ne!(weights(&base).1, weights(&other).1);
}

/// `sgdd_train --devices cpu,cpu`: two replicas, each on its shard of every micro-batch (5 rows:
/// shards of 3 and 2 rows holding different numbers of masked tokens; each epoch's last batch is
/// partial), train to the logged losses and the parameters of one device within 1e-5 (8 updates).
#[test]
fn two_replicas_train_as_one_device() {
    let _serial = serial();
    let device: burn::tensor::Device<B> = Default::default();
    let extra = [
        "train.epochs=2",
        "train.eval_generate=0",
        "train.batch_size=5",
    ];
    let one = tmp("dp-one");
    let two = tmp("dp-two");
    let single = run_training::<burn::backend::Autodiff<B>>(
        &config(&one, &extra),
        None,
        &device,
        false,
        None,
    )
    .unwrap();
    let parallel = run_training_on::<burn::backend::Autodiff<B>>(
        &config(&two, &extra),
        None,
        &[device, device],
        false,
        None,
    )
    .unwrap();
    assert_eq!(single.updates, parallel.updates);
    assert!(single.updates >= 4, "{} updates", single.updates);
    let losses = |dir: &Path| -> Vec<(u64, f64, f64)> {
        std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v.get("loss").is_some())
            .map(|v| {
                (
                    v["step"].as_u64().unwrap(),
                    v["loss"].as_f64().unwrap(),
                    v["loss/bound"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let (a, b) = (losses(&one), losses(&two));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.0, y.0);
        assert!(
            (x.1 - y.1).abs() <= 1e-5 && (x.2 - y.2).abs() <= 1e-5,
            "step {}: one device {x:?}, two {y:?}",
            x.0
        );
    }
    let params = |dir: &Path| {
        let (_, _, m) = load_trained::<B>(&dir.join("export"), &[], &device).unwrap();
        latent_core::train::state_dict::module_tensors(&m)
    };
    let (p1, p2) = (params(&one), params(&two));
    assert_eq!(p1.len(), p2.len());
    let mut largest = 0.0f32;
    for ((path, x), (path2, y)) in p1.iter().zip(&p2) {
        assert_eq!(path, path2);
        for (u, v) in x.data.iter().zip(&y.data) {
            largest = largest.max((u - v).abs());
        }
    }
    assert!(largest <= 1e-5, "parameters differ by {largest}");
    std::fs::remove_dir_all(one).ok();
    std::fs::remove_dir_all(two).ok();
}
