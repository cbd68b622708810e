//! Collection (determinism, resumption, metadata), pooling, the losses against PyTorch, and exact
//! resumption of training, on a tiny untrained CODI reasoner built from the CODI experiment's
//! setup.

use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::prelude::*;
use latent_codi::config::DataFormat;
use latent_codi::experiment::{setup, ExperimentConfig};
use latent_codi::run::build;
use latent_codi::Task;
use latent_core::train::StopFlag;
use latent_core::CpuBackend;
use latent_prm::collect::{collect, CollectInputs, Reasoner, SamplingConfig};
use latent_prm::config::{DataSection, ModelSection, PrmRunConfig, TrainingSection};
use latent_prm::loss::{prm_loss, LossKind};
use latent_prm::model::{pool, HeadKind, LatentRewardModel, Pooling, PrmInput};
use latent_prm::paths::{CollectionMeta, PathSet, METADATA_FILE};
use latent_prm::train::{load_scorer, train, train_on, TrainOptions};
use latent_prm::PrmError;

type B = CpuBackend;
type AB = Autodiff<CpuBackend>;

/// One test at a time: Burn's generator is global to the process and building or loading a model
/// draws from it outside any lock (lazy initial values), which would change another test's
/// draws in the middle of its run; the exact comparisons need runs alone in the process.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("latent-prm-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An untrained CODI reasoner (2 thoughts) saved in `dir/reasoner`, and its question file.
fn reasoner(dir: &Path) -> (PathBuf, PathBuf) {
    let experiment = ExperimentConfig {
        output_dir: dir.to_path_buf(),
        train_examples: 40,
        test_examples: 10,
        hidden: 32,
        layers: 1,
        heads: 2,
        num_latent: 2,
        ..ExperimentConfig::default()
    };
    let mut base = setup(&experiment).unwrap();
    base.method.task = Task::Codi;
    let built = build::<B>(&base, &Default::default()).unwrap();
    let saved = dir.join("reasoner");
    built
        .model
        .save(&saved, Some(&built.tokenizer), &built.meta)
        .unwrap();
    (saved, dir.join("data/train.txt"))
}

fn sampling() -> SamplingConfig {
    SamplingConfig {
        paths_per_question: 3,
        sigma: 1.0,
        relative_sigma: true,
        mc_rollouts: 0,
        seed: 5,
        questions_per_shard: 2,
        batch_rows: 4,
        max_new_tokens: 6,
    }
}

fn run_collect(
    reasoner_dir: &Path,
    questions: &Path,
    out: &Path,
    s: &SamplingConfig,
    stop: Option<&StopFlag>,
) -> CollectionMeta {
    let r = Reasoner::<B>::load(
        reasoner_dir,
        questions,
        DataFormat::Icot,
        Some(5),
        &Default::default(),
    )
    .unwrap();
    let inputs = CollectInputs {
        reasoner: &r.model,
        reasoner_dir,
        latent_steps: r.latent_steps,
        tokenizer: &r.tokenizer,
        examples: &r.examples,
        questions_file: questions,
    };
    collect(&inputs, s, out, false, stop).unwrap()
}

#[test]
fn collection_is_deterministic_resumes_without_duplicates_and_validates() {
    let _serial = serial();
    let dir = temp("collect");
    let (model, questions) = reasoner(&dir);
    let whole = run_collect(&model, &questions, &dir.join("a"), &sampling(), None);
    assert_eq!(
        (whole.questions, whole.paths, whole.shards.len()),
        (5, 15, 3)
    );
    // Batching does not change the paths: each (question, path, step) has its own noise stream.
    let other_batching = SamplingConfig {
        batch_rows: 7,
        ..sampling()
    };
    let b = run_collect(&model, &questions, &dir.join("b"), &other_batching, None);
    let (set_a, set_b) = (
        PathSet::load(&dir.join("a")).unwrap(),
        PathSet::load(&dir.join("b")).unwrap(),
    );
    assert_eq!(set_a.latents, set_b.latents);
    assert_eq!(set_a.paths, set_b.paths);
    assert_eq!(b.paths, whole.paths);
    // Noise makes the paths of a question differ.
    let w = set_a.steps() * set_a.hidden();
    assert_ne!(set_a.latent(0), set_a.latent(1));
    assert_eq!(set_a.latents.len(), 15 * w);
    // Another seed gives other paths.
    let reseeded = SamplingConfig {
        seed: 6,
        ..sampling()
    };
    run_collect(&model, &questions, &dir.join("c"), &reseeded, None);
    assert_ne!(
        PathSet::load(&dir.join("c")).unwrap().latents,
        set_a.latents
    );

    // Interrupted after the first shard, then resumed: the same files, no path twice.
    let stop = StopFlag::new();
    stop.request();
    let partial = run_collect(&model, &questions, &dir.join("d"), &sampling(), Some(&stop));
    assert_eq!((partial.questions, partial.shards.len()), (2, 1));
    let resumed = run_collect(&model, &questions, &dir.join("d"), &sampling(), None);
    assert_eq!(resumed, whole);
    let set_d = PathSet::load(&dir.join("d")).unwrap();
    assert_eq!(set_d.latents, set_a.latents);
    let keys: Vec<(usize, usize)> = set_d.paths.iter().map(|p| (p.question, p.path)).collect();
    let expected: Vec<(usize, usize)> = (0..5).flat_map(|q| (0..3).map(move |p| (q, p))).collect();
    assert_eq!(keys, expected);

    // The metadata validates; one whose counts disagree does not.
    let meta_path = dir.join("a").join(METADATA_FILE);
    CollectionMeta::read(&dir.join("a")).unwrap();
    let mut broken = whole.clone();
    broken.paths += 1;
    std::fs::write(&meta_path, serde_json::to_string(&broken).unwrap()).unwrap();
    let err = CollectionMeta::read(&dir.join("a"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("paths for 5 questions"), "{err}");
    // A directory without a collection names the command that makes one.
    let err = PathSet::load(&dir.join("nothing")).unwrap_err();
    assert!(matches!(err, PrmError::NoData { .. }));
    assert!(err.to_string().contains("prm_collect"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn monte_carlo_values_are_fractions_and_end_with_the_path_score() {
    let _serial = serial();
    let dir = temp("mc");
    let (model, questions) = reasoner(&dir);
    let s = SamplingConfig {
        mc_rollouts: 4,
        ..sampling()
    };
    let meta = run_collect(&model, &questions, &dir.join("mc"), &s, None);
    assert_eq!(
        meta.step_value_histogram.iter().sum::<usize>(),
        meta.paths * 2
    );
    let set = PathSet::load(&dir.join("mc")).unwrap();
    for i in 0..set.paths.len() {
        let v = set.step_value(i).unwrap();
        assert_eq!(v[1], set.scores[i]);
        assert!((v[0] * 4.0 - (v[0] * 4.0).round()).abs() < 1e-6, "{v:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pooling_with_padding_equals_pooling_the_unpadded_rows() {
    let _serial = serial();
    let device = Default::default();
    let hidden = Tensor::<B, 3>::random(
        [2, 5, 3],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    // Row 0 is left-padded by 2, row 1 right-padded by 1.
    let mask = Tensor::<B, 2, Int>::from_ints([[0, 0, 1, 1, 1], [1, 1, 1, 1, 0]], &device);
    for pooling in [Pooling::Mean, Pooling::Last, Pooling::Max] {
        let pooled = pool(hidden.clone(), mask.clone(), pooling);
        let alone0 = pool(
            hidden.clone().slice([0..1, 2..5]),
            Tensor::ones([1, 3], &device),
            pooling,
        );
        let alone1 = pool(
            hidden.clone().slice([1..2, 0..4]),
            Tensor::ones([1, 4], &device),
            pooling,
        );
        let expected = Tensor::cat(vec![alone0, alone1], 0);
        pooled.into_data().assert_approx_eq::<f32>(
            &expected.into_data(),
            burn::tensor::Tolerance::absolute(1e-6),
        );
    }
    // Through the whole scorer: a left-padded question scores as it does alone.
    let config = latent_core::ModelConfig::from_file(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../latent-core/tests/fixtures/llama/config.json"),
    )
    .unwrap();
    let backbone = latent_core::CausalLm::<B>::new(&config, &device);
    let h = config.hidden_size;
    for pooling in [Pooling::Mean, Pooling::Last, Pooling::Max] {
        let model = LatentRewardModel::new(backbone.clone(), h + 3, pooling, HeadKind::Pooled, 0.0);
        let latents = Tensor::<B, 3>::random(
            [2, 2, h + 3],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let batch = PrmInput {
            question_ids: Tensor::from_ints([[0, 0, 5, 6, 7], [9, 8, 7, 6, 5]], &device),
            question_mask: Tensor::from_ints([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], &device),
            latents: latents.clone(),
        };
        let alone = PrmInput {
            question_ids: Tensor::from_ints([[5, 6, 7]], &device),
            question_mask: Tensor::ones([1, 3], &device),
            latents: latents.slice([0..1, 0..2, 0..h + 3]),
        };
        let both: Vec<f32> = model.score(batch).unwrap().into_data().to_vec().unwrap();
        let one: Vec<f32> = model.score(alone).unwrap().into_data().to_vec().unwrap();
        assert!(
            (both[0] - one[0]).abs() < 1e-5,
            "{pooling:?}: {both:?} vs {one:?}"
        );
    }
}

#[test]
fn losses_match_pytorch() {
    let _serial = serial();
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/losses.json"),
    )
    .unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let device = Default::default();
    for case in fixture["cases"].as_array().unwrap() {
        let groups: Vec<usize> = serde_json::from_value(case["groups"].clone()).unwrap();
        let k = case["k"].as_u64().unwrap() as usize;
        let b: usize = groups.iter().sum();
        let read = |key: &str| -> Tensor<B, 2> {
            let v: Vec<f32> = serde_json::from_value::<Vec<f64>>(case[key].clone())
                .unwrap()
                .into_iter()
                .map(|x| x as f32)
                .collect();
            Tensor::from_data(TensorData::new(v, [b, k]), &device)
        };
        for (kind, key) in [
            (LossKind::Listwise, "listwise"),
            (LossKind::Mse, "mse"),
            (LossKind::Bce, "bce"),
        ] {
            let ours: f32 = prm_loss(kind, read("values"), read("labels"), &groups).into_scalar();
            let theirs = case[key].as_f64().unwrap() as f32;
            assert!(
                (ours - theirs).abs() < 1e-5,
                "{key} {groups:?}: {ours} vs {theirs}"
            );
        }
    }
}

fn values(t: Tensor<B, 2>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

fn scorer_config(paths: &Path, out: &Path, loss: LossKind, reasoner: &Path) -> PrmRunConfig {
    PrmRunConfig {
        model: ModelSection {
            backbone: Some(reasoner.display().to_string()),
            ..ModelSection::default()
        },
        data: DataSection {
            train: paths.to_path_buf(),
            ..DataSection::default()
        },
        loss,
        training: TrainingSection {
            output_dir: out.to_path_buf(),
            epochs: 2,
            batch_size: 2,
            accumulation: 2,
            learning_rate: 1e-3,
            save_every_updates: 1,
            keep_last: 0,
            ..TrainingSection::default()
        },
    }
}

#[test]
fn training_writes_every_checkpoint_and_resumes_exactly() {
    let _serial = serial();
    let dir = temp("train");
    let (model, questions) = reasoner(&dir);
    run_collect(&model, &questions, &dir.join("paths"), &sampling(), None);
    for loss in [LossKind::Mse, LossKind::Listwise] {
        let out = dir.join(format!("{loss:?}"));
        let config = scorer_config(&dir.join("paths"), &out, loss, &model);
        let options = TrainOptions::default();
        let (_, report) = train::<AB>(&config, &options, &Default::default()).unwrap();
        assert!(report.updates >= 4, "{report:?}");
        for sub in ["checkpoint-1", "epoch_0", "epoch_1", "best", "final"] {
            assert!(out.join(sub).join("model.safetensors").exists(), "{sub}");
        }
        assert!(out.join("training_stats.json").exists());
        // Resume from the first update's checkpoint: the same final weights.
        let again = dir.join(format!("{loss:?}-resumed"));
        let mut resumed_config = config.clone();
        resumed_config.training.output_dir = again.clone();
        let resume = TrainOptions {
            resume: Some(out.join("checkpoint-1")),
            ..TrainOptions::default()
        };
        train::<AB>(&resumed_config, &resume, &Default::default()).unwrap();
        let (a, _) = load_scorer::<B>(&out.join("final"), &Default::default()).unwrap();
        let (b, _) = load_scorer::<B>(&again.join("final"), &Default::default()).unwrap();
        assert_eq!(
            values(a.head.weight.val()),
            values(b.head.weight.val()),
            "{loss:?}"
        );
        assert_eq!(
            values(a.backbone.embed_tokens.weight.val()),
            values(b.backbone.embed_tokens.weight.val()),
            "{loss:?}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stop_during_the_held_out_evaluation_resumes_with_it() {
    let _serial = serial();
    // One update per epoch (accumulation over the epoch): the first update ends epoch 0, and its
    // held-out evaluation is the first thing to see the (already raised) stop.
    let dir = temp("stop-eval");
    let (model, questions) = reasoner(&dir);
    run_collect(&model, &questions, &dir.join("paths"), &sampling(), None);
    let config = |out: &str| {
        let mut c = scorer_config(&dir.join("paths"), &dir.join(out), LossKind::Mse, &model);
        c.data.eval = Some(dir.join("paths"));
        c.training.accumulation = 1000;
        c
    };
    let (_, full) = train::<AB>(
        &config("whole"),
        &TrainOptions::default(),
        &Default::default(),
    )
    .unwrap();
    assert_eq!((full.updates, full.eval_losses.len()), (2, 2));

    let stop = StopFlag::new();
    stop.request();
    let options = TrainOptions {
        stop: Some(stop),
        ..TrainOptions::default()
    };
    let err = train::<AB>(&config("stopped"), &options, &Default::default()).unwrap_err();
    let checkpoint = dir.join("stopped").join("checkpoint-1");
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
        !dir.join("stopped").join("epoch_0").exists(),
        "written after the evaluation"
    );

    let resume = TrainOptions {
        resume: Some(checkpoint),
        ..TrainOptions::default()
    };
    let (_, resumed) = train::<AB>(&config("stopped"), &resume, &Default::default()).unwrap();
    assert_eq!(resumed.updates, 1);
    assert_eq!(
        resumed.eval_losses, full.eval_losses,
        "epoch 0 evaluated first"
    );
    for sub in ["epoch_0", "best", "final"] {
        let bytes =
            |run: &str| std::fs::read(dir.join(run).join(sub).join("model.safetensors")).unwrap();
        assert!(
            bytes("stopped") == bytes("whole"),
            "{sub}/model.safetensors differs"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn two_replicas_train_the_scorer_as_one_device() {
    let _serial = serial();
    // Data parallel (`prm_train --devices cpu,cpu`): micro-batches of 2 paths (MSE) or 2 whole
    // questions (listwise) split 1 + 1 across two CPU replicas; no dropout, so both runs see the
    // same function. The weights match a one-device run.
    let dir = temp("parallel");
    let (model, questions) = reasoner(&dir);
    run_collect(&model, &questions, &dir.join("paths"), &sampling(), None);
    for loss in [LossKind::Mse, LossKind::Listwise] {
        let mut config = scorer_config(&dir.join("paths"), &dir.join("one"), loss, &model);
        config.model.dropout = 0.0;
        let options = TrainOptions::default();
        let (one, one_report) = train::<AB>(&config, &options, &Default::default()).unwrap();
        config.training.output_dir = dir.join("two");
        let devices = [Default::default(), Default::default()];
        let (two, two_report) = train_on::<AB>(&config, &options, &devices).unwrap();
        assert_eq!(one_report.updates, two_report.updates);
        assert!(dir.join("two/final/model.safetensors").exists());
        for (a, b) in one_report.epoch_losses.iter().zip(&two_report.epoch_losses) {
            assert!((a - b).abs() < 1e-5, "{loss:?}: epoch loss {a} vs {b}");
        }
        let diff = |a: Vec<f32>, b: Vec<f32>| {
            a.iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max)
        };
        let head = diff(
            values(one.head.weight.val().inner()),
            values(two.head.weight.val().inner()),
        );
        let embed = diff(
            values(one.backbone.embed_tokens.weight.val().inner()),
            values(two.backbone.embed_tokens.weight.val().inner()),
        );
        assert!(
            head < 1e-5 && embed < 1e-5,
            "{loss:?}: head {head}, embeddings {embed}"
        );
        if loss == LossKind::Mse {
            // (The listwise loss barely moves this untrained reasoner's scorer.)
            let start = load_scorer::<B>(&dir.join("one/checkpoint-1"), &Default::default())
                .unwrap()
                .0;
            let moved = diff(
                values(start.head.weight.val()),
                values(two.head.weight.val().inner()),
            );
            assert!(moved > 1e-4, "the head moved by {moved} after update 1");
        }
        std::fs::remove_dir_all(dir.join("one")).unwrap();
        std::fs::remove_dir_all(dir.join("two")).unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shipped_configs_load_and_the_design_run_counts_match() {
    let _serial = serial();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::env::set_current_dir(&repo).unwrap();
    for entry in std::fs::read_dir("configs/prm").unwrap() {
        let path = entry.unwrap().path();
        PrmRunConfig::load(&path, &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let config = PrmRunConfig::load(Path::new("configs/prm/qwen3-0.6b.yaml"), &[]).unwrap();
    let counts = latent_prm::train::parameter_counts(&config, 768).unwrap();
    assert_eq!(counts, (596_049_920, 1025, 768 * 1024 + 1024));
    assert_eq!(
        latent_prm::train::parameter_counts(&config, 1024)
            .unwrap()
            .2,
        0
    );
    let err = PrmRunConfig::load(
        Path::new("configs/prm/qwen3-0.6b.yaml"),
        &["loss=ranking".into()],
    )
    .unwrap_err();
    assert!(err.to_string().contains("loss"), "{err}");
}

/// `accumulation: 0` is an error naming the key and its file:line, not silently read as 1.
#[test]
fn zero_accumulation_names_the_key_and_line() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(repo.join("configs/prm/cpu-demo.yaml")).unwrap();
    let (line, _) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.trim_start().starts_with("accumulation:"))
        .expect("the demo config sets accumulation");
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == line {
                "  accumulation: 0".into()
            } else {
                l.to_string()
            }
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("prm-accumulation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.yaml");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let err = PrmRunConfig::load(&path, &[]).unwrap_err().to_string();
    assert!(
        err.contains(&format!("{}:{}", path.display(), line + 1))
            && err.contains("training.accumulation")
            && err.contains("at least 1"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
