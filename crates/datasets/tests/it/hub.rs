//! Hub datasets, offline: a parquet file in a hand-made hub cache, and the errors when offline.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use latent_datasets::data_dir::sample;
use latent_datasets::gsm8k::{self, Gsm8k};
use latent_datasets::hub::{HubDataset, HubOptions};
use latent_datasets::ReadOptions;
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

fn write_parquet(path: &Path, columns: &[(&str, Vec<String>)]) {
    let fields: String = columns
        .iter()
        .map(|(name, _)| format!("REQUIRED BYTE_ARRAY {name} (UTF8); "))
        .collect();
    let schema = Arc::new(parse_message_type(&format!("message schema {{ {fields}}}")).unwrap());
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let mut writer = SerializedFileWriter::new(File::create(path).unwrap(), schema, props).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut i = 0;
    while let Some(mut col) = group.next_column().unwrap() {
        let values: Vec<ByteArray> = columns[i]
            .1
            .iter()
            .map(|s| ByteArray::from(s.as_str()))
            .collect();
        col.typed::<ByteArrayType>()
            .write_batch(&values, None, None)
            .unwrap();
        col.close().unwrap();
        i += 1;
    }
    group.close().unwrap();
    writer.close().unwrap();
}

fn fake_cache(tag: &str) -> PathBuf {
    let cache =
        std::env::temp_dir().join(format!("latent-datasets-hub-{}-{tag}", std::process::id()));
    let repo = cache.join("datasets--openai--gsm8k");
    let snapshot = repo.join("snapshots").join("0123abcd");
    std::fs::create_dir_all(snapshot.join("main")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs").join("main"), "0123abcd").unwrap();
    cache
}

fn offline(cache: PathBuf) -> HubOptions {
    HubOptions {
        cache_dir: cache,
        offline: true,
        revision: "main".into(),
    }
}

#[test]
fn reads_cached_parquet_through_the_gsm8k_format() {
    let cache = fake_cache("ok");
    let lines = gsm8k::load(sample("gsm8k/test_sample.jsonl"), ReadOptions::strict())
        .unwrap()
        .records;
    let snapshot = cache.join("datasets--openai--gsm8k/snapshots/0123abcd/main");
    write_parquet(
        &snapshot.join("test-00000-of-00001.parquet"),
        &[
            (
                "question",
                lines[..5].iter().map(|r| r.question.clone()).collect(),
            ),
            (
                "answer",
                lines[..5].iter().map(|r| r.solution.clone()).collect(),
            ),
        ],
    );
    write_parquet(
        &snapshot.join("train-00000-of-00001.parquet"),
        &[
            ("question", vec!["q".into()]),
            ("answer", vec!["no marker".into()]),
        ],
    );
    let ds = HubDataset::with_options("openai/gsm8k", offline(cache));
    assert_eq!(
        ds.parquet_files("main", "test").unwrap(),
        ["main/test-00000-of-00001.parquet"]
    );
    let loaded = ds
        .load("main", "test", Gsm8k, ReadOptions::strict())
        .unwrap();
    assert_eq!(loaded.records, lines[..5]);

    let err = ds
        .load("main", "train", Gsm8k, ReadOptions::strict())
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("train-00000-of-00001.parquet:1: missing separator `####`"),
        "{err}"
    );
    let lenient = ds
        .load("main", "train", Gsm8k, ReadOptions::lenient())
        .unwrap();
    assert_eq!(lenient.stats.bad, 1);
    let err = ds.parquet_files("socratic", "test").unwrap_err();
    assert!(err.to_string().contains("socratic/test"), "{err}");
}

#[test]
fn offline_and_not_cached_is_a_clear_error() {
    let cache = fake_cache("missing");
    let ds = HubDataset::with_options("openai/gsm8k", offline(cache.clone()));
    let err = ds.file("main/test-00000-of-00001.parquet").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("hub dataset openai/gsm8k, file main/test-00000-of-00001.parquet: not in the local cache"),
        "{msg}"
    );
    assert!(msg.contains("HF_HUB_OFFLINE"), "{msg}");
    let other = HubDataset::with_options("zen-E/GSM8k-Aug", offline(cache));
    let msg = other
        .parquet_files("default", "train")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("zen-E/GSM8k-Aug") && msg.contains("HF_HUB_OFFLINE"),
        "{msg}"
    );
}
