//! Finding a model's files: a local directory, or a Hugging Face hub id through `hf-hub` and its cache.
//!
//! `HF_HUB_OFFLINE=1` is honoured here (hf-hub itself ignores it): only the cache is read, and a
//! file that is not cached is an error naming the repository and file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{CoreError, Result};

/// The files of one model.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// `config.json`.
    pub config: PathBuf,
    /// The safetensors files (one, or every shard named by `model.safetensors.index.json`).
    pub weights: Vec<PathBuf>,
    /// `tokenizer.json`, when present.
    pub tokenizer: Option<PathBuf>,
    /// `tokenizer_config.json`, when present (chat template, special tokens).
    pub tokenizer_config: Option<PathBuf>,
}

/// Whether `HF_HUB_OFFLINE` asks for offline mode.
pub fn hub_offline() -> bool {
    matches!(
        std::env::var("HF_HUB_OFFLINE")
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// Where files come from.
trait FileSource {
    fn get(&self, file: &str) -> Result<PathBuf>;
}

struct LocalDir(PathBuf);

impl FileSource for LocalDir {
    fn get(&self, file: &str) -> Result<PathBuf> {
        let path = self.0.join(file);
        if path.is_file() {
            Ok(path)
        } else {
            Err(CoreError::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            ))
        }
    }
}

struct Hub {
    repo: String,
}

impl FileSource for Hub {
    fn get(&self, file: &str) -> Result<PathBuf> {
        let cache = hf_hub::Cache::from_env();
        if let Some(path) = cache.model(self.repo.clone()).get(file) {
            return Ok(path);
        }
        let not_cached = |reason: String| CoreError::NotCached {
            repo: self.repo.clone(),
            file: file.into(),
            reason,
        };
        if hub_offline() {
            return Err(not_cached("HF_HUB_OFFLINE is set".into()));
        }
        let api = hf_hub::api::sync::ApiBuilder::from_env()
            .with_progress(true)
            .build()
            .map_err(|e| not_cached(format!("the hub client failed to start: {e}")))?;
        api.model(self.repo.clone())
            .get(file)
            .map_err(|e| not_cached(format!("the download failed: {e}")))
    }
}

/// Resolves `spec`, a local directory or a hub id such as `Qwen/Qwen2.5-0.5B`.
pub fn resolve_model(spec: &str) -> Result<ModelFiles> {
    let local = Path::new(spec);
    if local.is_dir() {
        resolve_with(&LocalDir(local.to_path_buf()))
    } else if local.exists()
        || spec.starts_with('.')
        || spec.starts_with('/')
        || spec.split('/').count() > 2
    {
        Err(CoreError::io(
            local,
            std::io::Error::new(std::io::ErrorKind::NotFound, "not a model directory"),
        ))
    } else {
        resolve_with(&Hub { repo: spec.into() })
    }
}

fn resolve_with(source: &dyn FileSource) -> Result<ModelFiles> {
    let config = source.get("config.json")?;
    let weights = match source.get("model.safetensors") {
        Ok(single) => vec![single],
        Err(single_err) => match source.get("model.safetensors.index.json") {
            Ok(index) => shards(&index)?
                .iter()
                .map(|shard| source.get(shard))
                .collect::<Result<Vec<_>>>()?,
            Err(_) => return Err(single_err),
        },
    };
    Ok(ModelFiles {
        config,
        weights,
        tokenizer: source.get("tokenizer.json").ok(),
        tokenizer_config: source.get("tokenizer_config.json").ok(),
    })
}

/// The shard file names listed in a `model.safetensors.index.json`.
fn shards(index: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(index).map_err(|e| CoreError::io(index, e))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| CoreError::json(index, &e))?;
    let map = value
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| CoreError::Json {
            path: index.into(),
            message: "missing object `weight_map`".into(),
        })?;
    let files: BTreeSet<String> = map
        .values()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    Ok(files.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directory_names_the_path() {
        let err = resolve_model("./no/such/model").unwrap_err().to_string();
        assert!(err.contains("no/such/model"), "{err}");
    }

    #[test]
    fn offline_uncached_repo_names_repo_and_file() {
        std::env::set_var("HF_HUB_OFFLINE", "1");
        std::env::set_var(
            "HF_HOME",
            std::env::temp_dir().join("latent-core-empty-hf-home"),
        );
        let err = resolve_model("nobody/not-a-model").unwrap_err().to_string();
        assert!(
            err.contains("nobody/not-a-model") && err.contains("config.json"),
            "{err}"
        );
        assert!(err.contains("HF_HUB_OFFLINE"), "{err}");
    }
}
