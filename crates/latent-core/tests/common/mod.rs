//! Helpers shared by the integration tests: fixture loading and tensor comparison.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::DType;
use latent_core::hf::safetensors::{Checkpoint, HostTensor};
use latent_core::{CausalLm, CpuBackend, ModelConfig};

pub type B = CpuBackend;

/// Directory of a committed fixture written by `scripts/make_lm_fixtures.py`.
pub fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The inputs the fixture's expected outputs were computed from.
pub struct Inputs {
    pub single: Vec<Vec<i64>>,
    pub batch_ids: Vec<Vec<i64>>,
    pub batch_mask: Vec<Vec<i64>>,
}

pub fn inputs(name: &str) -> Inputs {
    let path = fixture_dir(name).join("inputs.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let rows = |key: &str| -> Vec<Vec<i64>> { serde_json::from_value(v[key].clone()).unwrap() };
    Inputs {
        single: rows("single"),
        batch_ids: rows("batch_ids"),
        batch_mask: rows("batch_mask"),
    }
}

/// Loads a fixture model on the CPU in f32.
pub fn load_model(name: &str) -> CausalLm<B> {
    load_model_from(&fixture_dir(name))
}

pub fn load_model_from(dir: &std::path::Path) -> CausalLm<B> {
    load_model_on::<B>(dir)
}

/// Loads the model in `dir` in f32 on any backend (e.g. `Autodiff<CpuBackend>` for gradients).
pub fn load_model_on<BB: Backend>(dir: &std::path::Path) -> CausalLm<BB> {
    let config = ModelConfig::from_file(dir.join("config.json")).unwrap();
    let checkpoint = Checkpoint::open(&[dir.join("model.safetensors")]).unwrap();
    let (model, unused) = CausalLm::<BB>::new(&config, &Default::default())
        .load_checkpoint(&checkpoint, DType::F32)
        .unwrap();
    assert!(unused.is_empty(), "unused checkpoint keys: {unused:?}");
    model
}

/// The fixture's expected tensors.
pub fn expected(name: &str) -> Checkpoint {
    Checkpoint::open(&[fixture_dir(name).join("expected.safetensors")]).unwrap()
}

pub fn expected_tensor(ckpt: &Checkpoint, key: &str) -> HostTensor {
    ckpt.read(key)
        .unwrap()
        .unwrap_or_else(|| panic!("fixture lacks {key}"))
}

pub fn ids_tensor(rows: &[Vec<i64>]) -> Tensor<B, 2, Int> {
    let (b, s) = (rows.len(), rows[0].len());
    let flat: Vec<i64> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [b, s]), &Default::default())
}

pub fn host<const D: usize>(t: Tensor<B, D>) -> HostTensor {
    let data = t.into_data().convert::<f32>();
    HostTensor {
        shape: data.shape.to_vec(),
        data: data.into_vec().unwrap(),
    }
}

/// Largest absolute difference; panics on a shape mismatch.
pub fn max_abs_diff(a: &HostTensor, b: &HostTensor) -> f32 {
    assert_eq!(a.shape, b.shape, "shape mismatch");
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Rows `[b, s, ..]` of `t` restricted to batch item `b` and positions `range`.
pub fn select(t: &HostTensor, b: usize, range: std::ops::Range<usize>) -> HostTensor {
    let s = t.shape[1];
    let inner: usize = t.shape[2..].iter().product();
    let start = (b * s + range.start) * inner;
    let end = (b * s + range.end) * inner;
    let mut shape = t.shape.clone();
    shape[0] = 1;
    shape[1] = range.len();
    HostTensor {
        shape,
        data: t.data[start..end].to_vec(),
    }
}

pub const TOL: f32 = 1e-4;
