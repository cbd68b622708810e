//! Tests on the full data files; they skip unless `LATENT_DATA_DIR` is set.

use latent_datasets::data_dir::full_file_or_skip;
use latent_datasets::wiki::Wiki;
use latent_datasets::{gsm8k, icot, multiplication, qqp, wiki, ReadOptions};

#[test]
fn gsm8k_test_split_parses_completely() {
    let Some(path) = full_file_or_skip("gsm8k/test.jsonl") else {
        return;
    };
    let loaded = gsm8k::load(&path, ReadOptions::strict()).unwrap();
    assert_eq!(loaded.records.len(), 1319);
    assert_eq!(loaded.stats.lines, 1319);
    let with_commas = loaded
        .records
        .iter()
        .filter(|r| r.answer.text.contains(','))
        .count();
    assert_eq!(with_commas, 14);
    for r in &loaded.records {
        assert!(r.answer.value.is_finite() && r.answer.value.fract() == 0.0);
        assert!(!r.steps.is_empty());
    }
}

#[test]
fn gsm8k_train_split_parses_completely() {
    let Some(path) = full_file_or_skip("gsm8k/train.jsonl") else {
        return;
    };
    let loaded = gsm8k::load(&path, ReadOptions::strict()).unwrap();
    assert_eq!(loaded.records.len(), 7473);
}

#[test]
fn gsm8k_aug_splits_parse_completely() {
    for (file, n) in [("gsm8k-aug/test.txt", 1319), ("gsm8k-aug/valid.txt", 500)] {
        let Some(path) = full_file_or_skip(file) else {
            return;
        };
        let loaded = icot::load(&path, ReadOptions::strict()).unwrap();
        assert_eq!(loaded.records.len(), n, "{file}");
        for r in &loaded.records {
            r.gold().unwrap();
            r.equations().unwrap();
        }
    }
}

#[test]
fn gsm8k_aug_test_gold_equals_gsm8k_test_gold() {
    let (Some(aug), Some(gsm)) = (
        full_file_or_skip("gsm8k-aug/test.txt"),
        full_file_or_skip("gsm8k/test.jsonl"),
    ) else {
        return;
    };
    let aug = icot::load(aug, ReadOptions::strict()).unwrap().records;
    let gsm = gsm8k::load(gsm, ReadOptions::strict()).unwrap().records;
    assert_eq!(aug.len(), gsm.len());
    for (a, g) in aug.iter().zip(&gsm) {
        assert_eq!(a.gold().unwrap().value, g.answer.value, "{}", a.question);
    }
}

#[test]
fn multiplication_splits_parse_and_are_canonical() {
    for file in ["mult-4x4/test.txt", "mult-4x4/valid.txt"] {
        let Some(path) = full_file_or_skip(file) else {
            return;
        };
        let loaded = multiplication::load(&path, ReadOptions::strict()).unwrap();
        assert_eq!(loaded.records.len(), 1000);
        for r in &loaded.records {
            assert!(
                r.answer_is_correct() && r.cot_is_canonical(),
                "{}",
                r.to_line()
            );
        }
    }
}

#[test]
fn qqp_and_wiki_parse_completely() {
    // valid.jsonl has 2,048 lines; the last has no newline, so `wc -l` (and the data README) say 2,047.
    for (file, n) in [("qqp/test.jsonl", 2500), ("qqp/valid.jsonl", 2048)] {
        let Some(path) = full_file_or_skip(file) else {
            return;
        };
        assert_eq!(
            qqp::load_jsonl(&path, ReadOptions::strict())
                .unwrap()
                .records
                .len(),
            n
        );
    }
    let Some(path) = full_file_or_skip("wiki/wiki_sample.txt") else {
        return;
    };
    let loaded = wiki::load(&path, Wiki::default(), ReadOptions::strict()).unwrap();
    // 11,914 newline-terminated lines plus a last, cut-off line without a newline.
    assert_eq!(loaded.stats.lines, 11915);
    assert_eq!(loaded.records.len() + loaded.stats.blank, 11915);
}
