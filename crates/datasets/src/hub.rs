//! Hugging Face hub datasets: the parquet files of a dataset repository (for example `openai/gsm8k`,
//! config `main`), read through `hf-hub` from the local cache, or downloaded when online.
//!
//! `hf-hub` ignores `HF_HUB_OFFLINE`; this module honours it: when it is set (`1`, `true`, `yes`,
//! `on`) nothing touches the network and a file that is not cached is an error naming the
//! repository and the file.

use std::fs::File;
use std::path::{Path, PathBuf};

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Cache, Repo, RepoType};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::{Map, Value};

use crate::error::{DataError, Result};
use crate::jsonl::JsonFormat;
use crate::reader::{Loaded, ReadOptions, ReadStats, KEPT_ERRORS};

/// The environment variable that forbids network access.
pub const OFFLINE_ENV: &str = "HF_HUB_OFFLINE";

/// Whether `HF_HUB_OFFLINE` is set to a true value.
pub fn offline_from_env() -> bool {
    std::env::var(OFFLINE_ENV).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// Where the cache is and whether the network may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubOptions {
    /// The hub cache folder (`$HF_HOME/hub` or `~/.cache/huggingface/hub` by default).
    pub cache_dir: PathBuf,
    /// Never touch the network.
    pub offline: bool,
    /// Revision (branch, tag or commit) to read.
    pub revision: String,
}

impl HubOptions {
    /// From the environment: `HF_HOME` for the cache, `HF_HUB_OFFLINE` for offline mode.
    pub fn from_env() -> Self {
        Self {
            cache_dir: Cache::from_env().path().clone(),
            offline: offline_from_env(),
            revision: "main".to_string(),
        }
    }
}

/// A dataset repository on the hub.
#[derive(Debug, Clone)]
pub struct HubDataset {
    repo_id: String,
    options: HubOptions,
}

impl HubDataset {
    /// The repository `repo_id` (e.g. `openai/gsm8k`) with options from the environment.
    pub fn new(repo_id: &str) -> Self {
        Self::with_options(repo_id, HubOptions::from_env())
    }

    /// The repository with explicit options.
    pub fn with_options(repo_id: &str, options: HubOptions) -> Self {
        Self {
            repo_id: repo_id.to_string(),
            options,
        }
    }

    fn repo(&self) -> Repo {
        Repo::with_revision(
            self.repo_id.clone(),
            RepoType::Dataset,
            self.options.revision.clone(),
        )
    }

    fn error(&self, file: &str, reason: impl Into<String>) -> DataError {
        DataError::Hub {
            repo: self.repo_id.clone(),
            file: file.to_string(),
            reason: reason.into(),
        }
    }

    fn snapshot_dir(&self) -> Option<PathBuf> {
        let repo = self.repo();
        let base = self.options.cache_dir.join(repo.folder_name());
        let commit = std::fs::read_to_string(base.join("refs").join(repo.revision())).ok()?;
        Some(base.join("snapshots").join(commit.trim()))
    }

    /// The local path of `filename`: from the cache, else downloaded (unless offline).
    pub fn file(&self, filename: &str) -> Result<PathBuf> {
        let cache = Cache::new(self.options.cache_dir.clone());
        if let Some(path) = cache.repo(self.repo()).get(filename) {
            return Ok(path);
        }
        if self.options.offline {
            return Err(self.error(
                filename,
                format!(
                    "not in the local cache {} and {OFFLINE_ENV} is set",
                    self.options.cache_dir.display()
                ),
            ));
        }
        let api = ApiBuilder::from_cache(cache)
            .with_progress(false)
            .build()
            .map_err(|e| self.error(filename, e.to_string()))?;
        api.repo(self.repo())
            .get(filename)
            .map_err(|e| self.error(filename, e.to_string()))
    }

    /// The repository's files: from the hub when online, else from the cached snapshot.
    pub fn list_files(&self) -> Result<Vec<String>> {
        if !self.options.offline {
            let api = ApiBuilder::from_cache(Cache::new(self.options.cache_dir.clone()))
                .with_progress(false)
                .build()
                .map_err(|e| self.error("(file list)", e.to_string()))?;
            if let Ok(info) = api.repo(self.repo()).info() {
                return Ok(info.siblings.into_iter().map(|s| s.rfilename).collect());
            }
        }
        let dir = self.snapshot_dir().filter(|d| d.is_dir()).ok_or_else(|| {
            self.error(
                "(file list)",
                format!(
                    "no cached snapshot in {}{}",
                    self.options.cache_dir.display(),
                    if self.options.offline {
                        format!(" and {OFFLINE_ENV} is set")
                    } else {
                        " and the hub could not be reached".to_string()
                    }
                ),
            )
        })?;
        let mut files = Vec::new();
        walk(&dir, &dir, &mut files);
        files.sort();
        Ok(files)
    }

    /// The parquet files of `config` and `split`, in either layout the hub uses
    /// (`main/test-00000-of-00001.parquet` or `main/test/0000.parquet`), sorted.
    pub fn parquet_files(&self, config: &str, split: &str) -> Result<Vec<String>> {
        let prefix = format!("{config}/");
        let mut files: Vec<String> = self
            .list_files()?
            .into_iter()
            .filter(|f| {
                f.ends_with(".parquet")
                    && f.strip_prefix(&prefix).is_some_and(|rest| {
                        rest.starts_with(&format!("{split}-"))
                            || rest.starts_with(&format!("{split}/"))
                    })
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(self.error(
                &format!("{config}/{split}"),
                "no parquet file for this config and split",
            ));
        }
        Ok(files)
    }

    /// Reads every row of `config`/`split` through a JSON format (for example
    /// [`crate::gsm8k::Gsm8k`] for `openai/gsm8k`, config `main`).
    pub fn load<J: JsonFormat>(
        &self,
        config: &str,
        split: &str,
        mut format: J,
        options: ReadOptions,
    ) -> Result<Loaded<J::Record>> {
        let mut all = Loaded {
            records: Vec::new(),
            stats: ReadStats::default(),
        };
        for name in self.parquet_files(config, split)? {
            let path = self.file(&name)?;
            let part = load_parquet(&path, &mut format, options)?;
            all.records.extend(part.records);
            let (s, p) = (&mut all.stats, part.stats);
            s.lines += p.lines;
            s.records += p.records;
            s.filtered += p.filtered;
            s.bad += p.bad;
            s.errors.extend(p.errors);
            s.errors.truncate(KEPT_ERRORS);
        }
        Ok(all)
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// Converts a parquet value to JSON (strings, numbers, booleans, lists and groups; other types as
/// their display text).
fn field_to_json(field: &Field) -> Value {
    match field {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(v) => Value::from(*v),
        Field::Short(v) => Value::from(*v),
        Field::Int(v) => Value::from(*v),
        Field::Long(v) => Value::from(*v),
        Field::UByte(v) => Value::from(*v),
        Field::UShort(v) => Value::from(*v),
        Field::UInt(v) => Value::from(*v),
        Field::ULong(v) => Value::from(*v),
        Field::Float(v) => Value::from(f64::from(*v)),
        Field::Double(v) => Value::from(*v),
        Field::Str(s) => Value::String(s.clone()),
        Field::Group(row) => Value::Object(
            row.get_column_iter()
                .map(|(k, v)| (k.clone(), field_to_json(v)))
                .collect::<Map<_, _>>(),
        ),
        Field::ListInternal(list) => {
            Value::Array(list.elements().iter().map(field_to_json).collect())
        }
        other => Value::String(other.to_string()),
    }
}

/// Reads one parquet file through a JSON format; errors say `path:row`.
pub fn load_parquet<J: JsonFormat>(
    path: &Path,
    format: &mut J,
    options: ReadOptions,
) -> Result<Loaded<J::Record>> {
    let perr = |e: parquet::errors::ParquetError| DataError::Parquet {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let file = File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = SerializedFileReader::new(file).map_err(perr)?;
    let rows = reader.get_row_iter(None).map_err(perr)?;
    let mut stats = ReadStats::default();
    let mut records = Vec::new();
    for (i, row) in rows.enumerate() {
        let row = row.map_err(perr)?;
        stats.lines += 1;
        let value = Value::Object(
            row.get_column_iter()
                .map(|(k, v)| (k.clone(), field_to_json(v)))
                .collect(),
        );
        match format.parse_json(&value) {
            Ok(Some(r)) => {
                stats.records += 1;
                records.push(r);
            }
            Ok(None) => stats.filtered += 1,
            Err(source) => {
                let err = DataError::Line {
                    path: path.to_path_buf(),
                    line: i + 1,
                    source,
                };
                if !options.lenient {
                    return Err(err);
                }
                stats.bad += 1;
                if stats.errors.len() < KEPT_ERRORS {
                    stats.errors.push(err);
                }
            }
        }
    }
    Ok(Loaded { records, stats })
}
