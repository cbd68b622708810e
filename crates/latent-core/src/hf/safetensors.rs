//! Reading and writing safetensors checkpoints (single file or sharded) as host tensors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};

use crate::{CoreError, Result};

/// A tensor on the host, converted to f32 (lossless for f16/bf16 checkpoints).
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Shape as stored.
    pub shape: Vec<usize>,
    /// Values in row-major order.
    pub data: Vec<f32>,
}

impl HostTensor {
    /// The transpose of a matrix (rank 2), materialised.
    pub fn transposed(&self) -> Self {
        let [rows, cols] = [self.shape[0], self.shape[1]];
        let mut data = Vec::with_capacity(self.data.len());
        for c in 0..cols {
            data.extend((0..rows).map(|r| self.data[r * cols + c]));
        }
        Self {
            shape: vec![cols, rows],
            data,
        }
    }

    /// Part `index` of `count` equal slices of the last axis, materialised.
    pub fn last_axis_part(&self, index: usize, count: usize) -> Self {
        let width = *self.shape.last().expect("rank >= 1");
        let part = width / count;
        let data = self
            .data
            .chunks_exact(width)
            .flat_map(|row| &row[index * part..(index + 1) * part])
            .copied()
            .collect();
        let mut shape = self.shape.clone();
        *shape.last_mut().expect("rank >= 1") = part;
        Self { shape, data }
    }
}

/// The element type written by [`write_safetensors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveDtype {
    /// 32-bit floats.
    F32,
    /// bfloat16.
    BF16,
    /// IEEE half precision.
    F16,
}

impl SaveDtype {
    /// The name transformers uses in `config.json` (`torch_dtype` / `dtype`).
    pub fn torch_name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::BF16 => "bfloat16",
            Self::F16 => "float16",
        }
    }
}

/// The safetensors files of one checkpoint, read into memory, with a key → file index; or tensors
/// already on the host ([`Checkpoint::from_tensors`], e.g. converted from another format).
#[derive(Debug)]
pub struct Checkpoint {
    files: Vec<(PathBuf, Vec<u8>)>,
    key_file: HashMap<String, usize>,
    host: HashMap<String, HostTensor>,
    origin: Option<PathBuf>,
}

impl Checkpoint {
    /// Reads the given safetensors files (all shards of one checkpoint).
    pub fn open(paths: &[PathBuf]) -> Result<Self> {
        let mut files = Vec::with_capacity(paths.len());
        let mut key_file = HashMap::new();
        for (index, path) in paths.iter().enumerate() {
            let bytes = std::fs::read(path).map_err(|e| CoreError::io(path, e))?;
            let parsed = parse(path, &bytes)?;
            for name in parsed.names() {
                key_file.insert(name.to_string(), index);
            }
            files.push((path.clone(), bytes));
        }
        Ok(Self {
            files,
            key_file,
            host: HashMap::new(),
            origin: None,
        })
    }

    /// A checkpoint of host tensors under their keys; `location` is the file they came from (named
    /// in messages). A later tensor under the same key replaces an earlier one.
    pub fn from_tensors(location: PathBuf, tensors: Vec<(String, HostTensor)>) -> Self {
        Self {
            files: Vec::new(),
            key_file: HashMap::new(),
            host: tensors.into_iter().collect(),
            origin: Some(location),
        }
    }

    /// All tensor keys.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.key_file
            .keys()
            .chain(self.host.keys())
            .map(String::as_str)
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.key_file.contains_key(key) || self.host.contains_key(key)
    }

    /// The directory (or file) the checkpoint came from, for messages.
    pub fn location(&self) -> PathBuf {
        if let Some(origin) = &self.origin {
            return origin.clone();
        }
        match self.files.as_slice() {
            [(path, _)] => path.clone(),
            [(path, _), ..] => path.parent().map(Path::to_path_buf).unwrap_or_default(),
            [] => PathBuf::new(),
        }
    }

    /// Reads `key` as f32 and checks its shape; errors name the file, the key and `param` (what the
    /// tensor is for) when it is missing or misshapen.
    pub fn read_shaped(&self, key: &str, shape: &[usize], param: &str) -> Result<HostTensor> {
        let t = self.read(key)?.ok_or_else(|| CoreError::MissingTensor {
            location: self.location(),
            key: key.into(),
            param: param.into(),
        })?;
        if t.shape != shape {
            return Err(CoreError::TensorMismatch {
                location: self.location(),
                key: key.into(),
                expected: format!("shape {shape:?}"),
                found: format!("shape {:?}", t.shape),
            });
        }
        Ok(t)
    }

    /// The value under `key` in the header metadata of the checkpoint's first file (`None` when
    /// absent, or for host tensors).
    pub fn metadata(&self, key: &str) -> Result<Option<String>> {
        let Some((path, bytes)) = self.files.first() else {
            return Ok(None);
        };
        let (_, header) =
            SafeTensors::read_metadata(bytes).map_err(|e| safetensors_error(path, e))?;
        Ok(header.metadata().as_ref().and_then(|m| m.get(key)).cloned())
    }

    /// Reads `key` as f32, or `None` when absent.
    pub fn read(&self, key: &str) -> Result<Option<HostTensor>> {
        if let Some(t) = self.host.get(key) {
            return Ok(Some(t.clone()));
        }
        let Some(&index) = self.key_file.get(key) else {
            return Ok(None);
        };
        let (path, bytes) = &self.files[index];
        let view = parse(path, bytes)?
            .tensor(key)
            .map_err(|e| safetensors_error(path, e))?;
        let raw = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::F64 => raw
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect(),
            other => {
                return Err(CoreError::TensorMismatch {
                    location: path.clone(),
                    key: key.into(),
                    expected: "a floating-point tensor (f32, bf16, f16, f64)".into(),
                    found: format!("{other:?}"),
                })
            }
        };
        Ok(Some(HostTensor {
            shape: view.shape().to_vec(),
            data,
        }))
    }
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(bytes).map_err(|e| safetensors_error(path, e))
}

fn safetensors_error(path: &Path, err: safetensors::SafeTensorError) -> CoreError {
    CoreError::Safetensors {
        path: path.into(),
        message: err.to_string(),
    }
}

/// Writes tensors to `path` atomically (temporary file, then rename), with the `format: pt`
/// metadata transformers expects.
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, HostTensor)],
    dtype: SaveDtype,
) -> Result<()> {
    write_safetensors_with_metadata(path, tensors, dtype, &[])
}

/// [`write_safetensors`] with further `(key, value)` entries in the header's metadata (read back
/// with [`Checkpoint::metadata`]).
pub fn write_safetensors_with_metadata(
    path: &Path,
    tensors: &[(String, HostTensor)],
    dtype: SaveDtype,
    metadata: &[(String, String)],
) -> Result<()> {
    let encoded: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(key, t)| {
            let bytes = match dtype {
                SaveDtype::F32 => t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                SaveDtype::BF16 => t
                    .data
                    .iter()
                    .flat_map(|v| bf16::from_f32(*v).to_le_bytes())
                    .collect(),
                SaveDtype::F16 => t
                    .data
                    .iter()
                    .flat_map(|v| f16::from_f32(*v).to_le_bytes())
                    .collect(),
            };
            (key.clone(), t.shape.clone(), bytes)
        })
        .collect();
    let st_dtype = match dtype {
        SaveDtype::F32 => Dtype::F32,
        SaveDtype::BF16 => Dtype::BF16,
        SaveDtype::F16 => Dtype::F16,
    };
    let views = encoded
        .iter()
        .map(|(key, shape, bytes)| {
            safetensors::tensor::TensorView::new(st_dtype, shape.clone(), bytes)
                .map(|view| (key.clone(), view))
                .map_err(|e| safetensors_error(path, e))
        })
        .collect::<Result<Vec<_>>>()?;
    let extra = !metadata.is_empty();
    let mut metadata: HashMap<String, String> = metadata.iter().cloned().collect();
    metadata.insert("format".to_string(), "pt".to_string());
    let bytes =
        safetensors::serialize(views, Some(metadata)).map_err(|e| safetensors_error(path, e))?;
    // The header's metadata is written in hash-map order: with more than one entry, sort the
    // header so the same tensors always give the same bytes.
    let bytes = if extra { sorted_header(bytes) } else { bytes };
    crate::atomic::write_atomic(path, &bytes)
}

/// `value` with the keys of every object in sorted order (whichever map serde_json is built with).
fn sort_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(String, serde_json::Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        other => other,
    }
}

/// `bytes` (a serialised safetensors file) with its JSON header's keys sorted. Reordering keys
/// keeps the header's length, so the data offsets stay valid; anything unexpected leaves the file
/// as it was.
fn sorted_header(mut bytes: Vec<u8>) -> Vec<u8> {
    let Some(len) = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
    else {
        return bytes;
    };
    let Some(header) = bytes.get(8..8 + len) else {
        return bytes;
    };
    let sorted = std::str::from_utf8(header)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text.trim_end()).ok())
        .and_then(|value| serde_json::to_string(&sort_keys(value)).ok());
    if let Some(text) = sorted.filter(|t| t.len() <= len) {
        let padded = format!("{text:<len$}");
        bytes[8..8 + len].copy_from_slice(padded.as_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_and_splits_on_the_host() {
        let t = HostTensor {
            shape: vec![2, 3],
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        assert_eq!(t.transposed().data, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(t.transposed().shape, vec![3, 2]);
        let wide = HostTensor {
            shape: vec![2, 6],
            data: (0..12).map(|v| v as f32).collect(),
        };
        assert_eq!(wide.last_axis_part(1, 3).data, vec![2.0, 3.0, 8.0, 9.0]);
    }

    #[test]
    fn files_with_metadata_have_the_same_bytes_every_time_and_read_back() {
        let dir = std::env::temp_dir().join(format!("latent-core-st-meta-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tensors = vec![
            (
                "b.weight".to_string(),
                HostTensor {
                    shape: vec![3],
                    data: vec![1.0, 2.0, 3.0],
                },
            ),
            (
                "a.weight".to_string(),
                HostTensor {
                    shape: vec![1, 2],
                    data: vec![4.0, 5.0],
                },
            ),
        ];
        let metadata: Vec<(String, String)> = (0..6)
            .map(|i| (format!("key{i}"), format!("value {i}")))
            .collect();
        let mut files = Vec::new();
        // Each write hashes its metadata map with new random keys.
        for i in 0..8 {
            let path = dir.join(format!("{i}.safetensors"));
            write_safetensors_with_metadata(&path, &tensors, SaveDtype::F32, &metadata).unwrap();
            files.push(std::fs::read(&path).unwrap());
            let back = Checkpoint::open(&[path]).unwrap();
            assert_eq!(back.metadata("key3").unwrap().as_deref(), Some("value 3"));
            assert_eq!(back.metadata("format").unwrap().as_deref(), Some("pt"));
            assert_eq!(back.read("a.weight").unwrap(), Some(tensors[1].1.clone()));
            assert_eq!(back.read("b.weight").unwrap(), Some(tensors[0].1.clone()));
        }
        assert!(files.iter().all(|f| *f == files[0]));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn host_tensors_are_a_checkpoint() {
        let t = HostTensor {
            shape: vec![2],
            data: vec![1.0, 2.0],
        };
        let c = Checkpoint::from_tensors(PathBuf::from("x.bin"), vec![("a".into(), t.clone())]);
        assert!(c.contains("a") && !c.contains("b"));
        assert_eq!(c.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(c.read("a").unwrap(), Some(t));
        assert_eq!(c.read("b").unwrap(), None);
        assert_eq!(c.location(), PathBuf::from("x.bin"));
        let err = c.read_shaped("a", &[3], "p").unwrap_err().to_string();
        assert!(err.contains("x.bin"), "{err}");
    }

    #[test]
    fn round_trips_every_dtype() {
        let dir = std::env::temp_dir().join(format!("latent-core-st-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t = HostTensor {
            shape: vec![2, 3],
            data: vec![0.5, -1.25, 3.0, 0.0, 2.5, -0.125],
        };
        for dtype in [SaveDtype::F32, SaveDtype::BF16, SaveDtype::F16] {
            let path = dir.join(format!("{}.safetensors", dtype.torch_name()));
            write_safetensors(&path, &[("w".into(), t.clone())], dtype).unwrap();
            let ckpt = Checkpoint::open(&[path]).unwrap();
            assert_eq!(ckpt.read("w").unwrap().unwrap(), t, "{dtype:?}");
            assert!(ckpt.read("missing").unwrap().is_none());
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
