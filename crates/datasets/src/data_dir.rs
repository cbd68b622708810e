//! Where data lives: small samples shipped in this crate's `data/` folder, full files under the
//! folder named by `LATENT_DATA_DIR` (laid out like `shared/data`: `gsm8k/test.jsonl`,
//! `gsm8k-aug/test.txt`, `mult-4x4/test.txt`, `qqp/test.jsonl`, `wiki/wiki_sample.txt`).

use std::path::{Path, PathBuf};

/// The environment variable naming the folder of full data files.
pub const DATA_DIR_ENV: &str = "LATENT_DATA_DIR";

/// The folder named by `LATENT_DATA_DIR`, if set and not empty.
pub fn data_dir() -> Option<PathBuf> {
    std::env::var_os(DATA_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// A full data file, `relative` to `LATENT_DATA_DIR` (e.g. `gsm8k/test.jsonl`); `None` when the
/// variable is unset. The file may not exist.
pub fn full_file(relative: &str) -> Option<PathBuf> {
    data_dir().map(|d| d.join(relative))
}

/// A data path from a config: absolute, existing relative to the working directory, or under
/// `LATENT_DATA_DIR` (returned as given when none of these exists, so the error names it).
pub fn resolve_data_path(path: &Path) -> PathBuf {
    if path.is_absolute() || path.exists() {
        return path.to_path_buf();
    }
    match data_dir() {
        Some(dir) if dir.join(path).exists() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

/// The folder of samples shipped with this crate.
pub fn sample_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// A shipped sample file, e.g. `sample("gsm8k/test_sample.jsonl")`.
pub fn sample(relative: &str) -> PathBuf {
    sample_dir().join(relative)
}

/// The message a test prints when it skips for want of full data.
pub fn skip_message(relative: &str) -> String {
    format!(
        "skipped: set {DATA_DIR_ENV}=/path/to/data (a folder laid out like shared/data, \
         containing {relative}) to run this test on the full file"
    )
}

/// For tests that need a full file: the path when `LATENT_DATA_DIR` is set, otherwise prints
/// [`skip_message`] and returns `None`.
///
/// # Panics
/// When `LATENT_DATA_DIR` is set but the file is missing, so that a wrong setting fails loudly
/// instead of skipping.
pub fn full_file_or_skip(relative: &str) -> Option<PathBuf> {
    match full_file(relative) {
        None => {
            eprintln!("{}", skip_message(relative));
            None
        }
        Some(path) if path.is_file() => Some(path),
        Some(path) => panic!(
            "{DATA_DIR_ENV} is set but {} does not exist",
            path.display()
        ),
    }
}
