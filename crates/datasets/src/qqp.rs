//! Quora Question Pairs as paraphrase pairs: DiffuSeq's JSON lines `{"src", "trg"}` and GLUE's TSV
//! (`id qid1 qid2 question1 question2 is_duplicate`; duplicates only, de-duplicated).

use std::collections::HashSet;
use std::path::Path;

use serde_json::Value;

use crate::error::{ParseError, Result};
use crate::jsonl::{str_field, JsonFormat, Jsonl};
use crate::reader::{LineFormat, Loaded, ReadOptions};

/// Two questions with the same meaning.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ParaphrasePair {
    /// The source sentence.
    pub src: String,
    /// The target sentence (a paraphrase of `src`).
    pub trg: String,
}

/// DiffuSeq's JSON lines `{"src": ..., "trg": ...}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct QqpJson;

impl JsonFormat for QqpJson {
    type Record = ParaphrasePair;

    fn parse_json(&mut self, value: &Value) -> Result<Option<ParaphrasePair>, ParseError> {
        let (src, trg) = (str_field(value, "src")?, str_field(value, "trg")?);
        if src.trim().is_empty() || trg.trim().is_empty() {
            return Err(ParseError::Empty("sentence"));
        }
        Ok(Some(ParaphrasePair {
            src: src.to_string(),
            trg: trg.to_string(),
        }))
    }
}

/// GLUE's QQP TSV. The header line is skipped, non-duplicate rows and repeated pairs (in either
/// order) are filtered out.
#[derive(Debug, Clone, Default)]
pub struct QqpGlueTsv {
    seen: HashSet<(String, String)>,
}

/// Columns of GLUE's QQP train/dev TSV.
pub const GLUE_COLUMNS: [&str; 6] = [
    "id",
    "qid1",
    "qid2",
    "question1",
    "question2",
    "is_duplicate",
];

impl LineFormat for QqpGlueTsv {
    type Record = ParaphrasePair;

    fn parse_line(
        &mut self,
        line_no: usize,
        line: &str,
    ) -> Result<Option<ParaphrasePair>, ParseError> {
        let cols: Vec<&str> = line.split('\t').collect();
        if line_no == 1 && cols.first() == Some(&"id") {
            return Ok(None);
        }
        if cols.len() != GLUE_COLUMNS.len() {
            return Err(ParseError::Columns {
                expected: GLUE_COLUMNS.len(),
                found: cols.len(),
            });
        }
        for &id in &cols[..3] {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::BadNumber(id.to_string()));
            }
        }
        let (q1, q2) = (cols[3].trim(), cols[4].trim());
        if q1.is_empty() || q2.is_empty() {
            return Err(ParseError::Empty("question"));
        }
        match cols[5].trim() {
            "1" => {}
            "0" => return Ok(None),
            other => return Err(ParseError::BadNumber(format!("is_duplicate {other:?}"))),
        }
        let key = if q1 <= q2 { (q1, q2) } else { (q2, q1) };
        if !self.seen.insert((key.0.to_string(), key.1.to_string())) {
            return Ok(None);
        }
        Ok(Some(ParaphrasePair {
            src: q1.to_string(),
            trg: q2.to_string(),
        }))
    }
}

/// Loads DiffuSeq's QQP JSON lines (`qqp/test.jsonl`).
pub fn load_jsonl(path: impl AsRef<Path>, options: ReadOptions) -> Result<Loaded<ParaphrasePair>> {
    Jsonl(QqpJson).load(path, options)
}

/// Loads GLUE's QQP TSV (duplicates only, de-duplicated).
pub fn load_glue_tsv(
    path: impl AsRef<Path>,
    options: ReadOptions,
) -> Result<Loaded<ParaphrasePair>> {
    QqpGlueTsv::default().load(path, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_duplicates_only_deduplicated() {
        let text = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n\
                    1\t1\t2\tHow old?\tWhat age?\t1\n\
                    2\t3\t4\tA?\tB?\t0\n\
                    3\t2\t1\tWhat age?\tHow old?\t1\n";
        let loaded = QqpGlueTsv::default()
            .load_str("q.tsv", text, ReadOptions::strict())
            .unwrap();
        assert_eq!(loaded.records.len(), 1);
        assert_eq!(loaded.stats.filtered, 3);
        let err = QqpGlueTsv::default()
            .load_str("q.tsv", "1\t2\tx\n", ReadOptions::strict())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "q.tsv:1: expected 6 tab-separated columns, found 3"
        );
    }
}
