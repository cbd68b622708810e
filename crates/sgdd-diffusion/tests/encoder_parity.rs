//! Encoder parity with `transformers` (fixtures from `scripts/make_sgdd_fixtures.py`): tiny random
//! BERT and RoBERTa on a right-padded batch (RoBERTa's position offset included), and the real
//! all-MiniLM-L6-v2 under `LATENT_MODELS_DIR` (skipped when absent).

use std::path::PathBuf;

use burn::prelude::*;
use latent_core::hf::safetensors::Checkpoint;
use latent_core::CpuBackend;
use sgdd_diffusion::encoder::{masked_mean, BertModel, EncoderConfig, SemanticEncoder};

type B = CpuBackend;
const TOL: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn rows(v: &serde_json::Value, key: &str) -> Vec<Vec<i64>> {
    serde_json::from_value(v[key].clone()).unwrap()
}

fn int2(rows: &[Vec<i64>]) -> Tensor<B, 2, Int> {
    let (b, s) = (rows.len(), rows[0].len());
    Tensor::from_data(
        TensorData::new(rows.iter().flatten().copied().collect::<Vec<_>>(), [b, s]),
        &Default::default(),
    )
}

fn max_diff(a: Vec<f32>, b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn check_tiny(name: &str) {
    let dir = fixture(name);
    let config = EncoderConfig::from_file(dir.join("config.json")).unwrap();
    let ckpt = Checkpoint::open(&[dir.join("model.safetensors")]).unwrap();
    let model = BertModel::<B>::load(&config, &ckpt, &Default::default()).unwrap();
    let inputs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("inputs.json")).unwrap()).unwrap();
    let ids = rows(&inputs, "ids");
    let positions: Vec<Vec<i64>> = ids
        .iter()
        .map(|r| config.position_ids(&r.iter().map(|&i| i as u32).collect::<Vec<_>>()))
        .collect();
    let mask = int2(&rows(&inputs, "mask"));
    let hidden = model.forward(int2(&ids), int2(&positions), mask.clone());
    let expected = Checkpoint::open(&[dir.join("expected.safetensors")]).unwrap();
    let want = expected.read("last_hidden_state").unwrap().unwrap();
    assert_eq!(hidden.dims().to_vec(), want.shape);
    let d = max_diff(hidden.clone().into_data().to_vec().unwrap(), &want.data);
    assert!(d <= TOL, "{name}: last_hidden_state differs by {d}");
    let pooled = masked_mean(hidden, mask);
    let want = expected.read("sentence_embedding").unwrap().unwrap();
    let d = max_diff(pooled.into_data().to_vec().unwrap(), &want.data);
    assert!(d <= TOL, "{name}: sentence_embedding differs by {d}");
    // The padded row run alone (batch 1, no padding) pools to the same vector.
    let row: Vec<Vec<i64>> = rows(&inputs, "rows")[1..].to_vec();
    let pos: Vec<Vec<i64>> =
        vec![config.position_ids(&row[0].iter().map(|&i| i as u32).collect::<Vec<_>>())];
    let ones = int2(&[vec![1; row[0].len()]]);
    let alone = masked_mean(model.forward(int2(&row), int2(&pos), ones.clone()), ones);
    let width = want.shape[1];
    let d = max_diff(alone.into_data().to_vec().unwrap(), &want.data[width..]);
    assert!(d <= TOL, "{name}: row 1 alone differs by {d}");
}

#[test]
fn tiny_bert_matches_transformers() {
    check_tiny("bert");
}

#[test]
fn tiny_roberta_matches_transformers_with_position_offset_and_padding() {
    check_tiny("roberta");
}

#[test]
fn minilm_embeddings_match_transformers() {
    let Some(models) = std::env::var_os("LATENT_MODELS_DIR").filter(|v| !v.is_empty()) else {
        eprintln!("skipped: set LATENT_MODELS_DIR to a folder holding all-MiniLM-L6-v2");
        return;
    };
    let dir = PathBuf::from(models).join("all-MiniLM-L6-v2");
    if !dir.is_dir() {
        eprintln!("skipped: {} not found", dir.display());
        return;
    }
    let device = Default::default();
    let encoder = SemanticEncoder::<B>::load(dir.to_str().unwrap(), &device).unwrap();
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("minilm.json")).unwrap()).unwrap();
    let sentences = fixture["sentences"].as_array().unwrap();
    let texts: Vec<String> = sentences
        .iter()
        .map(|s| s["text"].as_str().unwrap().to_string())
        .collect();
    for s in sentences {
        let ids: Vec<u32> = serde_json::from_value(s["ids"].clone()).unwrap();
        assert_eq!(encoder.tokenize(s["text"].as_str().unwrap()).unwrap(), ids);
    }
    // Batched (padded) encoding must give the same vectors as transformers' one-by-one encoding.
    let got = encoder.embed_texts(&texts, 8, &device).unwrap();
    for (s, e) in sentences.iter().zip(got) {
        let want: Vec<f32> = serde_json::from_value(s["embedding"].clone()).unwrap();
        let dot: f32 = want.iter().zip(&e).map(|(a, b)| a * b).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let cos = dot / (norm(&want) * norm(&e));
        assert!(cos >= 0.99999, "{}: cosine {cos}", s["text"]);
        assert!(max_diff(e, &want) <= 1e-4, "{}", s["text"]);
    }
}
