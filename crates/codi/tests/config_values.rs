//! Run-config values that cannot work are errors naming the key and the file:line that sets it
//! (`latent_core::train::value_checks`, `config_file::key_location`), never silently corrected.

use std::path::{Path, PathBuf};

use latent_codi::config::CodiRunConfig;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `configs/codi/tiny-cpu.yaml` with `from` replaced by `to`, written to a temporary file; the
/// error of loading it, the file, and the line of `to`'s last line.
fn load_edited(name: &str, from: &str, to: &str) -> (String, PathBuf, usize) {
    let text = std::fs::read_to_string(repo().join("configs/codi/tiny-cpu.yaml")).unwrap();
    assert!(text.contains(from), "the shipped config has `{from}`");
    let edited = text.replacen(from, to, 1);
    let last = to.lines().last().unwrap().trim();
    let line = edited.lines().position(|l| l.contains(last)).unwrap() + 1;
    let dir = std::env::temp_dir().join(format!("codi-config-values-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, edited).unwrap();
    let err = CodiRunConfig::load(&path, &[]).unwrap_err().to_string();
    (err, path, line)
}

#[test]
fn bad_training_values_name_the_key_and_its_line() {
    for (name, from, to, key, needle) in [
        (
            "negative-lr",
            "learning_rate: 1.0e-3",
            "learning_rate: -1.0e-4",
            "training.learning_rate",
            "-0.0001",
        ),
        (
            "long-warmup",
            "warmup_ratio: 0.03",
            "warmup_ratio: 1.5",
            "training.warmup_ratio",
            "whole run",
        ),
        (
            "no-batch",
            "effective_batch_size: 8",
            "effective_batch_size: 0",
            "training.effective_batch_size",
            "at least 1",
        ),
        (
            "zero-clip",
            "max_grad_norm: 2.0",
            "max_grad_norm: 0.0",
            "training.max_grad_norm",
            "disable clipping",
        ),
        (
            "bf16-without-master",
            "dtype: f32",
            "dtype: bf16",
            "model.dtype",
            "master",
        ),
    ] {
        let (err, path, line) = load_edited(name, from, to);
        assert!(
            err.contains(&format!("{}:{line}", path.display())),
            "{name}: {err}"
        );
        assert!(err.contains(key) && err.contains(needle), "{name}: {err}");
    }
}

#[test]
fn an_unknown_precision_names_the_file_and_line() {
    let (err, path, line) = load_edited(
        "unknown-precision",
        "  device: cpu",
        "  device: cpu\n  precision: int8",
    );
    assert!(
        err.contains(&path.display().to_string())
            && err.contains(&format!("line {line}"))
            && err.contains("int8"),
        "{err}"
    );
    assert!(err.contains("bf16"), "the valid names are listed: {err}");
}

/// An override that breaks a value is named instead of the file's line.
#[test]
fn an_override_that_breaks_a_value_is_named() {
    let err = CodiRunConfig::load(
        &repo().join("configs/codi/tiny-cpu.yaml"),
        &["training.learning_rate=-1".into()],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("override `training.learning_rate=-1`") && !err.contains("tiny-cpu.yaml:"),
        "{err}"
    );
}
