//! `training.checkpointing`: the key parses and defaults to off, selects Burn's
//! `Autodiff<B, BalancedCheckpointing>` through `latent_core::train::TrainingJob` (as `codi_train`
//! does), and training on that backend gives the parameters training on `Autodiff<B>` gives.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::tensor::backend::AutodiffBackend;
use latent_codi::config::CodiRunConfig;
use latent_codi::run::{build, train, training_examples, TrainOptions};
use latent_core::train::state_dict::module_tensors;
use latent_core::train::{AutodiffJob, TrainingJob};
use latent_core::{BackendJob, CpuBackend};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `configs/codi/tiny-cpu.yaml` with `overrides`, read from the repository root (its paths are
/// repo-relative).
fn tiny(overrides: &[String]) -> latent_codi::Result<CodiRunConfig> {
    std::env::set_current_dir(repo()).unwrap();
    CodiRunConfig::load(Path::new("configs/codi/tiny-cpu.yaml"), overrides)
}

#[test]
fn the_key_defaults_to_off_and_parses() {
    assert!(!tiny(&[]).unwrap().training.checkpointing);
    let on = tiny(&["training.checkpointing=true".into()]).unwrap();
    assert!(on.training.checkpointing);
    let err = tiny(&["training.checkpointing=sometimes".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("training.checkpointing"), "{err}");
    // The published configs leave it off.
    for name in ["gpt2-gsm8k-aug", "llama-3.2-1b-gsm8k-aug"] {
        let path = repo().join(format!("configs/codi/{name}.yaml"));
        assert!(
            !CodiRunConfig::load(&path, &[])
                .unwrap()
                .training
                .checkpointing
        );
    }
}

/// The type name of the autodiff backend a job runs on.
struct BackendName;

impl AutodiffJob for BackendName {
    type Output = String;
    fn run<A: AutodiffBackend>(self, _device: A::Device) -> String {
        std::any::type_name::<A>().to_string()
    }
}

#[test]
fn the_key_selects_the_checkpointing_backend() {
    for (overrides, checkpointed) in [
        (vec![], false),
        (vec!["training.checkpointing=true".to_string()], true),
    ] {
        let config = tiny(&overrides).unwrap();
        let job = TrainingJob {
            checkpointing: config.training.checkpointing,
            job: BackendName,
        };
        let name = job.run::<CpuBackend>(Default::default());
        assert_eq!(
            name.contains("BalancedCheckpointing"),
            checkpointed,
            "{overrides:?}: {name}"
        );
    }
}

/// Every parameter by module path, as f32.
type Parameters = Vec<(String, Vec<f32>)>;

/// Trains `config` with `latent_codi::run::train` (what `codi_train` runs) on the backend
/// [`TrainingJob`] picks; returns the parameters before and after, and the last epoch's mean loss.
struct TrainTiny {
    config: CodiRunConfig,
}

impl AutodiffJob for TrainTiny {
    type Output = (Parameters, Parameters, f64);

    fn run<A: AutodiffBackend>(self, device: A::Device) -> Self::Output {
        let config = self.config;
        let built = build::<A>(&config, &device).unwrap();
        let (examples, _) = training_examples(&config, &built).unwrap();
        let host = |m: &latent_codi::CodiModel<A>| -> Parameters {
            module_tensors(m)
                .into_iter()
                .map(|(path, t)| (path, t.data))
                .collect()
        };
        let before = host(&built.model);
        let (model, report) =
            train::<A>(&config, built, &examples, &TrainOptions::default()).unwrap();
        assert_eq!(report.updates, 4);
        (before, host(&model), report.final_loss)
    }
}

/// The largest absolute difference between two parameter lists with the same paths and shapes.
fn max_difference(a: &Parameters, b: &Parameters) -> f32 {
    let paths = |p: &Parameters| p.iter().map(|(path, _)| path.clone()).collect::<Vec<_>>();
    assert_eq!(paths(a), paths(b));
    largest_change(a, b)
}

/// The largest absolute difference between the parameters `a` and `b` both have (by path).
fn largest_change(a: &Parameters, b: &Parameters) -> f32 {
    let mut largest = 0.0f32;
    for (path, va) in a {
        if let Some((_, vb)) = b.iter().find(|(p, _)| p == path) {
            assert_eq!(va.len(), vb.len(), "{path}");
            for (x, y) in va.iter().zip(vb) {
                largest = largest.max((x - y).abs());
            }
        }
    }
    largest
}

/// Held by each comparison for its two trainings. `train` attaches the LoRA adapters after the
/// model is built, drawing from the backend's global generator that `build` seeded; a model built
/// on another test's thread in between would reseed it and give the two runs different adapters.
static SERIAL: Mutex<()> = Mutex::new(());

/// Trains `config` (with `overrides`) with and without checkpointing, each into its own output
/// directory, and checks both give the same parameters (and that training moved them).
fn same_training_both_ways(name: &str, overrides: &[String]) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = std::env::temp_dir().join(format!("codi-ckpt-{name}-{}", std::process::id()));
    let run = |checkpointing: bool| {
        let mut all = overrides.to_vec();
        all.extend([
            format!(
                "training.output_dir={}",
                out.join(checkpointing.to_string()).display()
            ),
            format!("training.checkpointing={checkpointing}"),
            "training.epochs=2".into(),
            "data.max_train_samples=16".into(),
        ]);
        let config = tiny(&all).unwrap();
        TrainingJob {
            checkpointing,
            job: TrainTiny { config },
        }
        .run::<CpuBackend>(Default::default())
    };
    let (initial, plain, plain_loss) = run(false);
    let (initial_too, checkpointed, checkpointed_loss) = run(true);
    assert_eq!(
        max_difference(&initial, &initial_too),
        0.0,
        "{name}: same start"
    );
    // (A LoRA run's adapters are attached by `train`: compared where both have the parameter.)
    let moved = largest_change(&initial, &plain);
    assert!(
        moved > 1e-4,
        "{name}: training moved the parameters by {moved}"
    );
    let difference = max_difference(&plain, &checkpointed);
    assert!(
        difference <= 1e-6,
        "{name}: parameters differ by {difference} with checkpointing (training moved them by {moved})"
    );
    assert!(
        (plain_loss - checkpointed_loss).abs() <= 1e-6,
        "{name}: loss {plain_loss} vs {checkpointed_loss}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn checkpointing_trains_the_tiny_config_to_the_same_parameters() {
    // The published recipe at toy scale: Qwen2-style model, LoRA, only the new embedding rows.
    same_training_both_ways("lora", &[]);
}

#[test]
fn checkpointing_trains_a_fully_fine_tuned_gpt2_to_the_same_parameters() {
    // GPT-2 blocks (LayerNorm, GELU, learned positions), every weight trainable: the element-wise
    // operations on trainable weights are the ones checkpointing recomputes.
    let dir = std::env::temp_dir().join(format!("codi-ckpt-gpt2-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = repo().join("crates/latent-core/tests/fixtures/gpt2/config.json");
    let mut gpt2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    // The tiny-chat tokenizer's 400 ids and the sample's longest sequences.
    gpt2["vocab_size"] = 400.into();
    gpt2["n_positions"] = 512.into();
    let config = dir.join("config.json");
    std::fs::write(&config, gpt2.to_string()).unwrap();
    same_training_both_ways(
        "gpt2",
        &[
            "model.name_or_path=null".into(),
            format!("model.config={}", config.display()),
            "model.tokenizer=crates/latent-core/tests/fixtures/tiny-chat/tokenizer.json".into(),
            "lora=null".into(),
            "method.embeddings=all".into(),
            "method.prj_dim=32".into(),
        ],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
