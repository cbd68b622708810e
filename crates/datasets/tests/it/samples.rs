//! Loader tests on the shipped samples (real lines of each format).

use latent_datasets::data_dir::sample;
use latent_datasets::icot::{CotStyle, Icot, IcotHf};
use latent_datasets::jsonl::{FieldMap, Jsonl};
use latent_datasets::wiki::Wiki;
use latent_datasets::{gsm8k, icot, multiplication, qqp, wiki, LineFormat, ReadOptions};

#[test]
fn gsm8k_sample() {
    let loaded = gsm8k::load(sample("gsm8k/test_sample.jsonl"), ReadOptions::strict()).unwrap();
    assert_eq!(loaded.records.len(), 32);
    assert_eq!(loaded.stats.bad, 0);
    let first = &loaded.records[0];
    assert!(first
        .question
        .starts_with("Janet\u{2019}s ducks lay 16 eggs"));
    assert_eq!(
        first.steps,
        [
            "Janet sells 16 - 3 - 4 = 9 duck eggs a day.",
            "She makes 9 * 2 = $18 every day at the farmer\u{2019}s market."
        ]
    );
    assert_eq!(first.equations[0].to_string(), "<<16-3-4=9>>");
    assert_eq!(first.answer.value, 18.0);
    // Line 147 of the test split: the answer is written with a thousands separator.
    let comma = &loaded.records[30];
    assert_eq!(comma.answer.text, "2,125");
    assert_eq!(comma.answer.value, 2125.0);
    let equations: usize = loaded.records.iter().map(|r| r.equations.len()).sum();
    assert!(equations > 60);
    assert!(loaded.records.iter().all(|r| r.answer.value.fract() == 0.0));
}

#[test]
fn gsm8k_aug_sample_matches_gsm8k() {
    let aug = icot::load(sample("gsm8k-aug/test_sample.txt"), ReadOptions::strict()).unwrap();
    let gsm = gsm8k::load(sample("gsm8k/test_sample.jsonl"), ReadOptions::strict()).unwrap();
    assert_eq!(aug.records.len(), 30);
    // The GSM8k-Aug test split is the GSM8K test split with the equations as CoT.
    for (a, g) in aug.records.iter().zip(&gsm.records) {
        assert_eq!(a.question, g.question.trim());
        assert_eq!(a.gold().unwrap().value, g.answer.value);
    }
    let third = &aug.records[2];
    assert_eq!(third.steps.len(), 4);
    assert_eq!(third.steps[0], "<<80000+50000=130000>>");
    assert_eq!(third.answer, "70000");
}

#[test]
fn gsm8k_aug_hf_form_equals_icot_lines() {
    let hf = Jsonl(IcotHf::default())
        .load(sample("gsm8k-aug/hf_sample.jsonl"), ReadOptions::strict())
        .unwrap();
    let lines = Icot::default()
        .load(sample("gsm8k-aug/test_sample.txt"), ReadOptions::strict())
        .unwrap();
    assert_eq!(hf.records.len(), 10);
    assert_eq!(hf.records[..], lines.records[..10]);
}

#[test]
fn gsm8k_aug_nl_sample() {
    let nl = Icot::nl()
        .load(sample("gsm8k-aug/nl_sample.txt"), ReadOptions::strict())
        .unwrap();
    assert_eq!(nl.records.len(), 12);
    assert_eq!(
        nl.records[0].steps,
        [
            "Janet sells 16 - 3 - 4 = 9 duck eggs a day",
            "She makes 9 * 2 = $18 every day at the farmer\u{2019}s market."
        ]
    );
    // The NL lines are not equations: reading them as GSM8k-Aug fails at line 1.
    let err = Icot {
        style: CotStyle::Equations,
    }
    .load(sample("gsm8k-aug/nl_sample.txt"), ReadOptions::strict())
    .unwrap_err();
    assert!(
        err.to_string().contains("nl_sample.txt:1: bad equation"),
        "{err}"
    );
}

#[test]
fn multiplication_sample() {
    let loaded =
        multiplication::load(sample("mult-4x4/test_sample.txt"), ReadOptions::strict()).unwrap();
    assert_eq!(loaded.records.len(), 30);
    for r in &loaded.records {
        assert_eq!((r.a.len(), r.b.len(), r.answer.len()), (4, 4, 8));
        assert!(r.answer_is_correct());
        assert!(r.cot_is_canonical());
    }
}

#[test]
fn qqp_samples() {
    let json = qqp::load_jsonl(sample("qqp/test_sample.jsonl"), ReadOptions::strict()).unwrap();
    assert_eq!(json.records.len(), 30);
    assert_eq!(json.records[1].src, "How can I be a good geologist?");
    assert_eq!(
        json.records[1].trg,
        "What should I do to be a great geologist?"
    );
    let tsv = qqp::load_glue_tsv(sample("qqp/glue_sample.tsv"), ReadOptions::strict()).unwrap();
    // 10 rows: 2 non-duplicates and 2 repeated pairs are filtered, plus the header.
    assert_eq!(tsv.records.len(), 6);
    assert_eq!(tsv.stats.filtered, 5);
    assert!(tsv.records.iter().all(|p| json.records.contains(p)));
}

#[test]
fn wiki_sample() {
    let all = wiki::load(
        sample("wiki/wiki_sample.txt"),
        Wiki::default(),
        ReadOptions::strict(),
    )
    .unwrap();
    assert_eq!(all.records.len() + all.stats.blank, 40);
    assert_eq!(all.records[0], "YMCA in South Australia");
    let filtered = wiki::load(
        sample("wiki/wiki_sample.txt"),
        Wiki::words(8, 40),
        ReadOptions::strict(),
    )
    .unwrap();
    assert!(filtered.stats.filtered > 0);
    assert!(filtered
        .records
        .iter()
        .all(|s| (8..=40).contains(&s.split_whitespace().count())));
}

#[test]
fn generic_jsonl_on_gsm8k() {
    let map = FieldMap::new()
        .field("prompt", "question")
        .field("target", "answer");
    let loaded = Jsonl(map)
        .load(sample("gsm8k/test_sample.jsonl"), ReadOptions::strict())
        .unwrap();
    assert_eq!(loaded.records.len(), 32);
    assert!(loaded.records[0]["target"].ends_with("#### 18"));
}

#[test]
fn streaming_equals_loading() {
    let path = sample("gsm8k-aug/test_sample.txt");
    let stream = Icot::default()
        .stream(&path, ReadOptions::strict())
        .unwrap();
    let streamed: Vec<_> = stream.map(Result::unwrap).collect();
    let loaded = icot::load(&path, ReadOptions::strict()).unwrap();
    assert_eq!(streamed, loaded.records);
}
