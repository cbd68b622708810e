//! Chat templates render byte-identical to transformers' `apply_chat_template`.
//!
//! Each directory under `tests/fixtures/chat/` holds a real model's `tokenizer_config.json` (its
//! `chat_template`, `bos_token` and `eos_token`) and `expected.json`, written by
//! `scripts/make_chat_fixtures.py` with transformers.

use std::path::{Path, PathBuf};

use latent_core::hf::chat_template::{ChatMessage, ChatTemplate};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chat")
}

fn check_fixture(name: &str) {
    let dir = fixtures_dir().join(name);
    let template = ChatTemplate::from_tokenizer_config(dir.join("tokenizer_config.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let expected_path = dir.join("expected.json");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
    let cases = expected["cases"].as_array().expect("cases");
    assert!(!cases.is_empty(), "{name}: no cases");
    let mut failures = Vec::new();
    for case in cases {
        let case_name = case["name"].as_str().unwrap_or("<unnamed>");
        let messages: Vec<ChatMessage> =
            serde_json::from_value(case["messages"].clone()).expect("messages");
        let add_generation_prompt = case["add_generation_prompt"].as_bool().expect("flag");
        let extra = case
            .get("extra")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        let want = case["text"].as_str().expect("text");
        match template.render_with(&messages, add_generation_prompt, extra) {
            Ok(got) if got == want => {}
            Ok(got) => failures.push(format!(
                "{name}/{case_name}: rendered\n{got:?}\ntransformers\n{want:?}"
            )),
            Err(e) => failures.push(format!("{name}/{case_name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn qwen2_5_matches_transformers() {
    check_fixture("qwen2.5");
}

#[test]
fn llama3_matches_transformers() {
    check_fixture("llama3");
}

#[test]
fn render_without_extras_matches_the_plain_cases() {
    // Qwen needs no extra variables, so `render` must give the same text as `render_with`.
    let dir = fixtures_dir().join("qwen2.5");
    let template = ChatTemplate::from_tokenizer_config(dir.join("tokenizer_config.json")).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let case = &expected["cases"][1];
    let messages: Vec<ChatMessage> = serde_json::from_value(case["messages"].clone()).unwrap();
    assert_eq!(
        template
            .render(&messages, case["add_generation_prompt"].as_bool().unwrap())
            .unwrap(),
        case["text"].as_str().unwrap()
    );
}

#[test]
fn llama3_without_date_string_uses_strftime_now() {
    let dir = fixtures_dir().join("llama3");
    let template = ChatTemplate::from_tokenizer_config(dir.join("tokenizer_config.json")).unwrap();
    let text = template
        .render(&[ChatMessage::new("user", "Hi")], true)
        .unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("Today Date: "))
        .expect("a Today Date line");
    // "%d %b %Y", e.g. "05 Mar 2025".
    let parts: Vec<&str> = line.split(' ').collect();
    assert_eq!(parts.len(), 3, "{line:?}");
    assert!(
        parts[0].len() == 2 && parts[0].bytes().all(|b| b.is_ascii_digit()),
        "{line:?}"
    );
    assert!(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            .contains(&parts[1]),
        "{line:?}"
    );
    assert!(
        parts[2].len() == 4 && parts[2].bytes().all(|b| b.is_ascii_digit()),
        "{line:?}"
    );
}

#[test]
fn raise_exception_fails_with_its_message() {
    let template = ChatTemplate::new(
        "{% for m in messages %}{% if m.role not in ['user', 'assistant'] %}\
         {{ raise_exception('Only user and assistant roles are supported, got ' + m.role) }}\
         {% endif %}{{ m.content }}{% endfor %}",
        None,
        None,
    );
    assert_eq!(
        template
            .render(&[ChatMessage::new("user", "ok")], false)
            .unwrap(),
        "ok"
    );
    let err = template
        .render(&[ChatMessage::new("system", "no")], false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Only user and assistant roles are supported, got system"),
        "{err}"
    );
    assert!(err.starts_with("<chat_template>: tokenizer: "), "{err}");
}

#[test]
fn llama3_raise_exception_from_the_real_template() {
    // The Llama 3.x template refuses tools when there is no user message to put them in.
    let dir = fixtures_dir().join("llama3");
    let template = ChatTemplate::from_tokenizer_config(dir.join("tokenizer_config.json")).unwrap();
    let err = template
        .render_with(
            &[ChatMessage::new("system", "sys")],
            true,
            serde_json::json!({"tools": [], "date_string": "01 Jan 2025"}),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "Cannot put tools in the first user message when there's no first user message!"
        ),
        "{err}"
    );
    assert!(err.contains("tokenizer_config.json"), "{err}");
}

/// A fresh scratch directory under the target dir's temp area, removed first if left over.
fn scratch_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("chat-template-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn config_without_chat_template_names_the_file() {
    let dir = scratch_dir("missing");
    let path = dir.join("tokenizer_config.json");
    std::fs::write(&path, r#"{"bos_token": "<s>", "eos_token": "</s>"}"#).unwrap();
    let err = ChatTemplate::from_tokenizer_config(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("no chat_template"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn chat_template_jinja_and_config_forms() {
    let dir = scratch_dir("forms");
    let path = dir.join("tokenizer_config.json");

    // No chat_template in the JSON: the sibling chat_template.jinja is used; AddedToken objects work.
    std::fs::write(
        &path,
        r#"{"chat_template": null, "bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>"}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("chat_template.jinja"),
        "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}{{ eos_token }}\n{% endfor %}\n",
    )
    .unwrap();
    let t = ChatTemplate::from_tokenizer_config(&path).unwrap();
    assert_eq!(t.bos_token(), Some("<s>"));
    assert_eq!(t.path(), path.as_path());
    assert_eq!(
        t.render(
            &[
                ChatMessage::new("user", "hi"),
                ChatMessage::new("assistant", "yo")
            ],
            false
        )
        .unwrap(),
        "<s>user: hi</s>\nassistant: yo</s>\n"
    );

    // With both, chat_template.jinja wins, as in transformers.
    std::fs::write(&path, r#"{"chat_template": "JSON", "eos_token": "</s>"}"#).unwrap();
    let t = ChatTemplate::from_tokenizer_config(&path).unwrap();
    assert_eq!(
        t.render(&[ChatMessage::new("user", "hi")], false).unwrap(),
        "user: hi</s>\n"
    );
    std::fs::remove_file(dir.join("chat_template.jinja")).unwrap();
    let t = ChatTemplate::from_tokenizer_config(&path).unwrap();
    assert_eq!(t.template(), "JSON");

    // The list form: the "default" entry is taken.
    std::fs::write(
        &path,
        r#"{"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D{{ add_generation_prompt }}"}]}"#,
    )
    .unwrap();
    let t = ChatTemplate::from_tokenizer_config(&path).unwrap();
    assert_eq!(t.render(&[], true).unwrap(), "DTrue");
    assert_eq!(t.bos_token(), None);

    // A list without "default" is an error naming the file and the variants.
    std::fs::write(
        &path,
        r#"{"chat_template": [{"name": "rag", "template": "R"}]}"#,
    )
    .unwrap();
    let err = ChatTemplate::from_tokenizer_config(&path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&path.display().to_string()) && err.contains("\"rag\""),
        "{err}"
    );

    // A file that does not exist is an I/O error naming it.
    let missing = dir.join("nope.json");
    let err = ChatTemplate::from_tokenizer_config(&missing)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&missing.display().to_string()), "{err}");

    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn message_serde_roundtrip() {
    let m = ChatMessage::new("user", "hi");
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(json, r#"{"role":"user","content":"hi"}"#);
    assert_eq!(serde_json::from_str::<ChatMessage>(&json).unwrap(), m);
}
