//! BLEU against the committed fixture from `scripts/make_sgdd_fixtures.py`: sacreBLEU's corpus
//! BLEU within 0.01 and NLTK's sentence BLEU (method 4) per pair.

use sgdd_diffusion::metrics::{corpus_bleu, mean_sentence_bleu, sentence_bleu};

#[test]
fn bleu_matches_sacrebleu_and_nltk() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bleu.json");
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let pairs = fixture["pairs"].as_array().unwrap();
    let hyps: Vec<String> = pairs
        .iter()
        .map(|p| p["hyp"].as_str().unwrap().to_string())
        .collect();
    let refs: Vec<String> = pairs
        .iter()
        .map(|p| p["ref"].as_str().unwrap().to_string())
        .collect();
    for (p, (h, r)) in pairs.iter().zip(hyps.iter().zip(&refs)) {
        let want = p["sentence_bleu"].as_f64().unwrap();
        let got = sentence_bleu(h, r);
        assert!(
            (got - want).abs() < 1e-9,
            "{h:?} vs {r:?}: {got} (NLTK {want})"
        );
    }
    let mean = mean_sentence_bleu(&hyps, &refs);
    assert!((mean - fixture["mean_sentence_bleu"].as_f64().unwrap()).abs() < 1e-9);
    let corpus = corpus_bleu(&hyps, &refs);
    let counts: Vec<usize> = serde_json::from_value(fixture["sacrebleu_counts"].clone()).unwrap();
    let totals: Vec<usize> = serde_json::from_value(fixture["sacrebleu_totals"].clone()).unwrap();
    assert_eq!(corpus.correct.to_vec(), counts);
    assert_eq!(corpus.total.to_vec(), totals);
    assert_eq!(
        corpus.sys_len as u64,
        fixture["sacrebleu_sys_len"].as_u64().unwrap()
    );
    assert_eq!(
        corpus.ref_len as u64,
        fixture["sacrebleu_ref_len"].as_u64().unwrap()
    );
    let want = fixture["sacrebleu_corpus"].as_f64().unwrap();
    assert!(
        (corpus.score - want).abs() < 0.01,
        "corpus BLEU {} vs sacreBLEU {want}",
        corpus.score
    );
}
