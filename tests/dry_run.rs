//! The installed binary on the tiny CPU configs: each training recipe's `--dry-run` exits 0 and
//! prints its counts, `--output-dir` lands in the config's own output key, and a flag a job does
//! not use fails in the common error style.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `latent args...` in `dir`.
fn latent(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_latent"))
        .current_dir(dir)
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("the latent binary runs")
}

/// Runs a dry run, checks its exit status and returns its stdout.
fn dry_run(dir: &Path, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["--dry-run", "--output-dir", "runs/moved"]);
    let out = latent(dir, &all);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{all:?}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn codi_train_dry_run_prints_counts() {
    let out = dry_run(
        &root(),
        &["codi", "train", "--config", "configs/codi/tiny-cpu.yaml"],
    );
    assert!(out.contains("\"output_dir\": \"runs/moved\""), "{out}");
    assert!(out.contains("\"trainable_parameters\":36432"), "{out}");
    assert!(out.contains("\"projection_parameters\":4800"), "{out}");
    assert!(out.contains("\"parameters\":78336"), "{out}");
}

#[test]
fn hrpo_train_dry_run_prints_counts() {
    let out = dry_run(
        &root(),
        &["hrpo", "train", "--config", "configs/grpo/tiny-cpu.yaml"],
    );
    assert!(out.contains("\"output_dir\": \"runs/moved\""), "{out}");
    for line in [
        "trainable lora: 12288",
        "trainable residual_gate: 4704",
        "trainable residual_lambda: 48",
        "trainable thinking_projection: 2304",
        "trainable total: 19344",
        "prompts: 32; optimizer updates per epoch: 8 (4 prompts x 4 completions each)",
    ] {
        assert!(out.contains(line), "{line:?} missing from\n{out}");
    }
}

#[test]
fn prm_train_dry_run_prints_counts() {
    // The demo's backbone and paths are written by the demo; a fixture backbone stands in.
    let out = dry_run(
        &root(),
        &[
            "prm",
            "train",
            "--config",
            "configs/prm/cpu-demo.yaml",
            "--set",
            "model.backbone=crates/latent-core/tests/fixtures/qwen3",
            "--set",
            "model.latent_dim=32",
        ],
    );
    assert!(out.contains("\"output_dir\": \"runs/moved\""), "{out}");
    for line in [
        "backbone: 27872",
        "head: 33",
        "input projection: 0 (thoughts of width 32)",
        "trainable total: 27905",
    ] {
        assert!(out.contains(line), "{line:?} missing from\n{out}");
    }
}

#[test]
fn sgdd_train_dry_run_prints_counts() {
    // test_tiny's paths are relative to crates/sgdd-diffusion.
    let out = dry_run(
        &root().join("crates/sgdd-diffusion"),
        &[
            "sgdd",
            "train",
            "--config",
            "../../configs/sgdd/test_tiny.yaml",
        ],
    );
    assert!(out.contains("\"out_dir\": \"runs/moved\""), "{out}");
    assert!(
        out.contains("\"trainable_parameters\":20832") && out.contains("\"updates_per_epoch\":4"),
        "{out}"
    );
}

#[test]
fn an_unused_flag_fails_in_the_common_style() {
    let out = latent(
        &root(),
        &[
            "lm",
            "forward",
            "--model",
            "m",
            "--input-ids",
            "1",
            "--out",
            "o",
            "--resume",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: `latent lm forward` does not take --resume\n"
    );
    let out = latent(&root(), &["hrpo", "train"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: `latent hrpo train` needs --config\n"
    );
}
