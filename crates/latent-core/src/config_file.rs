//! Reading run configs (YAML or JSON) into serde structs, validated before any work starts: an
//! unknown key is an error naming the file, line and key, with the closest valid key suggested.
//! YAML is read with `serde_norway` (the maintained fork of `serde_yaml`).
//!
//! Config structs should carry `#[serde(deny_unknown_fields)]` so serde reports unknown keys.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

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

/// Reads a config file, then applies command-line overrides with [`apply_overrides`]. The file is
/// checked on its own first (errors name its line).
pub fn read_config_with_overrides<T: Serialize + DeserializeOwned>(
    path: impl AsRef<Path>,
    overrides: &[String],
) -> Result<T> {
    apply_overrides(&read_config(path)?, overrides)
}

/// Applies command-line overrides `dotted.key=value` to a config (the value is read as YAML, so
/// `3`, `1e-4`, `true`, `[a, b]` and plain strings all work). A key `T`'s schema lacks is an error
/// naming the overrides and the closest valid key (config structs deny unknown fields).
pub fn apply_overrides<T: Serialize + DeserializeOwned>(
    config: &T,
    overrides: &[String],
) -> Result<T> {
    let mut tree = serde_json::to_value(config).map_err(|e| CoreError::Json {
        path: "the config before overrides".into(),
        message: e.to_string(),
    })?;
    for item in overrides {
        apply_override(&mut tree, item).map_err(|message| CoreError::Json {
            path: format!("override `{item}`").into(),
            message,
        })?;
    }
    serde_json::from_value(tree).map_err(|e| CoreError::Json {
        path: format!("overrides {overrides:?}").into(),
        message: explain(&e.to_string()),
    })
}

/// Sets `key.path=value` in a JSON tree (creating missing objects on the way).
fn apply_override(tree: &mut serde_json::Value, item: &str) -> std::result::Result<(), String> {
    let (key, value) = item
        .split_once('=')
        .ok_or_else(|| "expected key=value, e.g. training.epochs=3".to_string())?;
    let value: serde_json::Value =
        serde_norway::from_str(value).map_err(|e| format!("value is not valid YAML: {e}"))?;
    let mut node = tree;
    let parts: Vec<&str> = key.trim().split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !node.is_object() {
            *node = serde_json::Value::Object(Default::default());
        }
        let obj = node.as_object_mut().expect("made an object");
        if i + 1 == parts.len() {
            obj.insert(part.to_string(), value);
            return Ok(());
        }
        node = obj
            .entry(part.to_string())
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
    }
    Err("empty key".into())
}

/// Where the value of `key` (dotted, e.g. `training.learning_rate`) comes from: the command-line
/// override that sets it (or a section above it), else `path:line` when the config file `path`
/// sets it, else `path (default)`. Value checks run after parsing, on the merged config; this
/// points them back at what to edit.
pub fn key_location(path: &Path, overrides: &[String], key: &str) -> String {
    let overriding = overrides.iter().rev().find(|o| {
        o.split_once('=').is_some_and(|(k, _)| {
            let k = k.trim();
            key == k || key.starts_with(&format!("{k}."))
        })
    });
    if let Some(o) = overriding {
        return format!("override `{o}`");
    }
    let line = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| key_line(&text, key));
    match line {
        Some(line) => format!("{}:{line}", path.display()),
        None => format!("{} (default)", path.display()),
    }
}

/// The 1-based line of `text` (a YAML or pretty-printed JSON config) that sets the dotted `key`:
/// each part of the key is looked for after its parent's line, and (in YAML) indented deeper
/// than the parent and before the parent's section ends.
pub fn key_line(text: &str, key: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    // (first line to search, indent the part must exceed; None at the top level)
    let (mut from, mut parent_indent): (usize, Option<usize>) = (0, None);
    let mut found = None;
    for part in key.split('.') {
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(from) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let level = indent(line);
            if let Some(p) = parent_indent {
                // A YAML line at or above the parent's indent ends the parent's section.
                if level <= p && !trimmed.starts_with('"') && !trimmed.starts_with('}') {
                    break;
                }
            }
            let name = trimmed.trim_start_matches(['"', '\'']);
            if let Some(rest) = name.strip_prefix(part) {
                let rest = rest.trim_start_matches(['"', '\'']).trim_start();
                if rest.starts_with(':') {
                    hit = Some((i, level));
                    break;
                }
            }
        }
        let (i, level) = hit?;
        found = Some(i + 1);
        from = i + 1;
        parent_indent = Some(level);
    }
    found
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

    #[derive(Debug, Serialize, Deserialize)]
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
    fn overrides_replace_values_and_unknown_override_keys_fail() {
        let dir = std::env::temp_dir().join(format!("cfg-override-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.yaml");
        std::fs::write(&path, "epochs: 3\nlearning_rate: 0.1\n").unwrap();
        let run: Run = read_config_with_overrides(&path, &["epochs=7".into()]).unwrap();
        assert_eq!(run.epochs, 7);
        assert_eq!(run.learning_rate, 0.1);
        let msg = read_config_with_overrides::<Run>(&path, &["epoch=7".into()])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("did you mean `epochs`?"), "{msg}");
        assert!(read_config_with_overrides::<Run>(&path, &["epochs".into()]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn keys_are_found_on_their_line() {
        let yaml = "model:\n  dtype: f32\ntraining:\n  # lr\n  learning_rate: 1e-4\n  seed: 3\neval:\n  seed: 9\n";
        assert_eq!(key_line(yaml, "training.learning_rate"), Some(5));
        assert_eq!(key_line(yaml, "training.seed"), Some(6));
        assert_eq!(key_line(yaml, "eval.seed"), Some(8));
        assert_eq!(key_line(yaml, "model.seed"), None, "not in model's section");
        assert_eq!(key_line(yaml, "training.epochs"), None);
        let json = "{\n  \"train\": {\n    \"lr\": 0.1,\n    \"epochs\": 2\n  }\n}";
        assert_eq!(key_line(json, "train.epochs"), Some(4));
        assert_eq!(key_line(json, "train.lr"), Some(3));
        let dir = std::env::temp_dir().join(format!("cfg-locate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.yaml");
        std::fs::write(&path, yaml).unwrap();
        assert_eq!(
            key_location(&path, &[], "training.seed"),
            format!("{}:6", path.display())
        );
        assert!(key_location(&path, &[], "training.epochs").ends_with("(default)"));
        let set = ["eval.seed=1".to_string(), "training.seed=5".to_string()];
        assert_eq!(
            key_location(&path, &set, "training.seed"),
            "override `training.seed=5`"
        );
        assert!(!key_location(&path, &set, "training.seedling").starts_with("override"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
