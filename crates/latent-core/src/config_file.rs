//! Reading run configs (YAML or JSON) into serde structs, validated before any work starts: an
//! unknown key is an error naming the file, line and key, with the closest valid key suggested.
//! YAML is read with `serde_norway` (the maintained fork of `serde_yaml`).
//!
//! Config structs should carry `#[serde(deny_unknown_fields)]` so serde reports unknown keys.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::{CoreError, Result};

/// Parses `text` (the contents of `path`) into `T`.
pub fn parse_json_config<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    serde_json::from_str(text).map_err(|e| CoreError::Json {
        path: path.into(),
        message: explain(&e.to_string()),
    })
}

/// Parses YAML `text` (the contents of `path`) into `T`.
pub fn parse_yaml_config<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    serde_norway::from_str(text).map_err(|e| CoreError::Json {
        path: path.into(),
        message: explain(&e.to_string()),
    })
}

/// Reads a config file: YAML for `.yaml`/`.yml`, JSON otherwise.
pub fn read_config<T: DeserializeOwned>(path: impl AsRef<Path>) -> Result<T> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| CoreError::io(path, e))?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => parse_yaml_config(&text, path),
        _ => parse_json_config(&text, path),
    }
}

/// Adds "did you mean" to serde's `unknown field `x`, expected one of `a`, `b`` messages.
fn explain(message: &str) -> String {
    // serde_norway names the section first (`train: unknown field ...`) for nested keys.
    let Some(rest) = message
        .find("unknown field `")
        .map(|at| &message[at + "unknown field `".len()..])
    else {
        return message.to_string();
    };
    let Some((unknown, tail)) = rest.split_once('`') else {
        return message.to_string();
    };
    let candidates: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
    match candidates.iter().min_by_key(|c| edit_distance(unknown, c)) {
        Some(best) if edit_distance(unknown, best) <= unknown.len().max(best.len()) / 2 => {
            format!("{message} (did you mean `{best}`?)")
        }
        _ => message.to_string(),
    }
}

/// Levenshtein distance between two strings (by characters).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Run {
        learning_rate: f64,
        epochs: usize,
        #[serde(default)]
        warmup_ratio: f64,
    }

    #[test]
    fn unknown_keys_name_file_line_and_the_closest_key() {
        let text = "{\n  \"epochs\": 3,\n  \"lerning_rate\": 0.1\n}";
        let msg = parse_json_config::<Run>(text, Path::new("configs/run.json"))
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("configs/run.json:"), "{msg}");
        assert!(
            msg.contains("`lerning_rate`") && msg.contains("line 3"),
            "{msg}"
        );
        assert!(msg.contains("did you mean `learning_rate`?"), "{msg}");
        let far = parse_json_config::<Run>("{\"zzz\": 1}", Path::new("c.json"))
            .unwrap_err()
            .to_string();
        assert!(!far.contains("did you mean"), "{far}");
    }

    #[test]
    fn wrong_types_and_missing_keys_are_reported() {
        let msg = parse_json_config::<Run>(
            "{\"epochs\": \"three\", \"learning_rate\": 1}",
            Path::new("c.json"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.contains("invalid type") && msg.contains("c.json"),
            "{msg}"
        );
        let msg = parse_json_config::<Run>("{\"epochs\": 3}", Path::new("c.json"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("missing field `learning_rate`"), "{msg}");
    }

    #[test]
    fn yaml_configs_get_the_same_checks() {
        let ok: Run =
            parse_yaml_config("epochs: 3\nlearning_rate: 0.1\n", Path::new("run.yaml")).unwrap();
        assert_eq!(ok.epochs, 3);
        let msg = parse_yaml_config::<Run>(
            "epochs: 3\nlearning_rate: 0.1\nwarmup_ration: 0.1\n",
            Path::new("configs/run.yaml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.starts_with("configs/run.yaml:") && msg.contains("line 3"),
            "{msg}"
        );
        assert!(msg.contains("did you mean `warmup_ratio`?"), "{msg}");
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
