//! Every shipped config in `configs/sgdd/` parses and validates; a typo is named with a suggestion.

use std::path::PathBuf;

use sgdd_diffusion::config::RunConfig;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/sgdd")
}

#[test]
fn shipped_configs_validate() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        let config =
            RunConfig::load(&path, &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(config.model.max_len >= 16, "{}", path.display());
        names.push(path.file_name().unwrap().to_string_lossy().to_string());
    }
    names.sort();
    assert_eq!(
        names,
        [
            "cpu_demo_qqp.yaml",
            "cpu_demo_wiki.yaml",
            "cpu_memorise_wiki.yaml",
            "phase1_wiki.yaml",
            "phase2_qqp.yaml",
            "test_tiny.yaml"
        ]
    );
}

#[test]
fn a_misspelt_key_is_named_with_its_line() {
    let path = std::env::temp_dir().join(format!("sgdd-typo-{}.yaml", std::process::id()));
    std::fs::write(
        &path,
        "task: wiki_reconstruction\nencoder: x\ntrain:\n  warmup_ration: 0.1\n",
    )
    .unwrap();
    let err = RunConfig::load(&path, &[]).unwrap_err().to_string();
    std::fs::remove_file(&path).ok();
    assert!(
        err.contains("warmup_ration") && err.contains("did you mean `warmup_ratio`"),
        "{err}"
    );
    assert!(err.contains("line 4"), "{err}");
}
