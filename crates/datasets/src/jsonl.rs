//! JSON lines: the [`JsonFormat`] trait shared by every JSON-based format (files and hub parquet
//! rows), the [`Jsonl`] adapter that reads them line by line, and a generic loader with a field
//! mapping ([`FieldMap`]).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::ParseError;
use crate::reader::LineFormat;

/// A format whose records come from one JSON value (a JSON line, or a parquet row).
pub trait JsonFormat {
    /// The typed record.
    type Record;
    /// Converts one JSON value; `Ok(None)` skips it on purpose.
    fn parse_json(&mut self, value: &Value) -> Result<Option<Self::Record>, ParseError>;
}

/// Reads a [`JsonFormat`] from JSON lines: `Jsonl(Gsm8k).load(path, options)`.
#[derive(Debug, Clone, Default)]
pub struct Jsonl<J>(pub J);

impl<J: JsonFormat> LineFormat for Jsonl<J> {
    type Record = J::Record;

    fn parse_line(&mut self, _line_no: usize, line: &str) -> Result<Option<J::Record>, ParseError> {
        let value: Value =
            serde_json::from_str(line).map_err(|e| ParseError::Json(e.to_string()))?;
        self.0.parse_json(&value)
    }
}

/// Looks up `key` in a JSON object; a key starting with `/` is a JSON pointer (`/meta/id`).
pub fn field<'a>(value: &'a Value, key: &str) -> Result<&'a Value, ParseError> {
    let found = if key.starts_with('/') {
        value.pointer(key)
    } else {
        value.as_object().and_then(|o| o.get(key))
    };
    found.ok_or_else(|| ParseError::MissingField(key.to_string()))
}

/// A string field (see [`field`] for `key`).
pub fn str_field<'a>(value: &'a Value, key: &str) -> Result<&'a str, ParseError> {
    field(value, key)?
        .as_str()
        .ok_or_else(|| ParseError::FieldType {
            field: key.to_string(),
            expected: "a string",
        })
}

/// A generic JSON-lines format: picks fields by name (or JSON pointer) and renames them.
///
/// Strings are kept as they are; numbers and booleans are written as JSON text; other types are an
/// error. Fields marked optional may be absent.
#[derive(Debug, Clone, Default)]
pub struct FieldMap {
    fields: Vec<(String, String, bool)>,
}

impl FieldMap {
    /// An empty mapping.
    pub fn new() -> Self {
        Self::default()
    }
    /// Requires source field `source` and stores it under `name`.
    pub fn field(mut self, name: &str, source: &str) -> Self {
        self.fields
            .push((name.to_string(), source.to_string(), true));
        self
    }
    /// Like [`FieldMap::field`], but the field may be absent or null.
    pub fn optional(mut self, name: &str, source: &str) -> Self {
        self.fields
            .push((name.to_string(), source.to_string(), false));
        self
    }
}

/// One record of a [`FieldMap`]: target name → text.
pub type Fields = BTreeMap<String, String>;

impl JsonFormat for FieldMap {
    type Record = Fields;

    fn parse_json(&mut self, value: &Value) -> Result<Option<Fields>, ParseError> {
        if !value.is_object() {
            return Err(ParseError::Other("line is not a JSON object".into()));
        }
        let mut out = Fields::new();
        for (name, source, required) in &self.fields {
            let v = match field(value, source) {
                Ok(Value::Null) | Err(_) if !required => continue,
                Ok(v) => v,
                Err(e) => return Err(e),
            };
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(ParseError::FieldType {
                        field: source.clone(),
                        expected: "a string, number or boolean",
                    })
                }
            };
            out.insert(name.clone(), text);
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{LineFormat, ReadOptions};

    #[test]
    fn field_map() {
        let text = "{\"q\": \"hi\", \"meta\": {\"id\": 7}}\n{\"q\": \"yo\"}\n";
        let map = FieldMap::new()
            .field("question", "q")
            .optional("id", "/meta/id");
        let loaded = Jsonl(map.clone())
            .load_str("mem", text, ReadOptions::strict())
            .unwrap();
        assert_eq!(loaded.records[0]["question"], "hi");
        assert_eq!(loaded.records[0]["id"], "7");
        assert!(!loaded.records[1].contains_key("id"));
        let err = Jsonl(map.field("a", "missing"))
            .load_str("mem", text, ReadOptions::strict())
            .unwrap_err();
        assert_eq!(err.to_string(), "mem:1: missing field `missing`");
    }
}
