//! Malformed input: `path:line: reason` errors, lenient mode, I/O errors.

use std::path::PathBuf;

use latent_datasets::icot::Icot;
use latent_datasets::jsonl::Jsonl;
use latent_datasets::multiplication::Multiplication;
use latent_datasets::qqp::QqpJson;
use latent_datasets::{gsm8k, icot, DataError, LineFormat, ReadOptions};

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("latent-datasets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const AUG: &str = "Q1?||<<1+1=2>> #### 2\n\
                   Q2? no separator <<2+2=4>> #### 4\n\
                   Q3?||<<3+3=6>> #### 6\n\
                   Q4?||<<4+4=8>> 8\n\
                   Q5?||<<5+5=10>> #### 10\n";

#[test]
fn strict_error_names_path_and_line() {
    let path = temp_file("aug.txt", AUG);
    let err = icot::load(&path, ReadOptions::strict()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:2: missing separator `||`", path.display())
    );
    assert!(matches!(err, DataError::Line { line: 2, .. }));
}

#[test]
fn lenient_mode_skips_and_counts() {
    let path = temp_file("aug2.txt", AUG);
    let loaded = icot::load(&path, ReadOptions::lenient()).unwrap();
    assert_eq!(loaded.records.len(), 3);
    assert_eq!(loaded.stats.bad, 2);
    let msgs: Vec<String> = loaded.stats.errors.iter().map(|e| e.to_string()).collect();
    assert!(
        msgs[0].ends_with("aug2.txt:2: missing separator `||`"),
        "{msgs:?}"
    );
    assert!(
        msgs[1].ends_with("aug2.txt:4: missing separator `####`"),
        "{msgs:?}"
    );
}

#[test]
fn streaming_stops_after_first_error_in_strict_mode() {
    let path = temp_file("aug3.txt", AUG);
    let results: Vec<_> = Icot::default()
        .stream(&path, ReadOptions::strict())
        .unwrap()
        .collect();
    assert_eq!(results.len(), 2);
    assert!(results[0].is_ok() && results[1].is_err());
}

#[test]
fn json_errors() {
    let text = "{\"question\": \"Q\", \"answer\": \"x\\n#### 3\"}\n{\"question\": \"Q\"}\n{not json\n{\"question\": 3, \"answer\": \"#### 1\"}\n{\"question\": \"Q\", \"answer\": \"#### three\"}\n";
    let path = temp_file("g.jsonl", text);
    let loaded = gsm8k::load(&path, ReadOptions::lenient()).unwrap();
    assert_eq!(loaded.records.len(), 1);
    let msgs: Vec<String> = loaded.stats.errors.iter().map(|e| e.to_string()).collect();
    let p = path.display();
    assert_eq!(msgs[0], format!("{p}:2: missing field `answer`"));
    assert!(
        msgs[1].starts_with(&format!("{p}:3: invalid JSON")),
        "{}",
        msgs[1]
    );
    assert_eq!(msgs[2], format!("{p}:4: field `question` is not a string"));
    assert_eq!(msgs[3], format!("{p}:5: bad number \"three\""));
}

#[test]
fn other_formats_report_lines() {
    let err = Multiplication
        .load_str(
            "m.txt",
            "1 2 * 3 4||4 #### 8 0 4\n1 2 * 3 x||4 #### 8\n",
            ReadOptions::strict(),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "m.txt:2: bad number \"\\\"x\\\" in second factor\""
    );
    let err = Jsonl(QqpJson)
        .load_str(
            "q.jsonl",
            "{\"src\": \"a\", \"trg\": \"\"}",
            ReadOptions::strict(),
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "q.jsonl:1: empty sentence");
}

#[test]
fn invalid_utf8_and_crlf() {
    let dir = std::env::temp_dir().join(format!("latent-datasets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bytes.txt");
    std::fs::write(&path, b"Q?||<<1+1=2>> #### 2\r\n\xff\xfe||x #### 1\r\n").unwrap();
    let loaded = icot::load(&path, ReadOptions::lenient()).unwrap();
    assert_eq!(loaded.records.len(), 1);
    assert_eq!(loaded.records[0].answer, "2");
    assert!(loaded.stats.errors[0]
        .to_string()
        .contains("bytes.txt:2: invalid UTF-8"));
}

#[test]
fn missing_file_names_path() {
    let err = icot::load("/nonexistent/x.txt", ReadOptions::strict()).unwrap_err();
    assert!(err.to_string().starts_with("/nonexistent/x.txt: "), "{err}");
}
