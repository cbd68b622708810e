//! Chat templates from Hugging Face `tokenizer_config.json`, rendered like `transformers`.
//!
//! [`ChatTemplate::render`] produces the same text as
//! `tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=...)`. It runs the
//! template with [`minijinja`] set up like the Jinja2 environment transformers builds
//! (`transformers.utils.chat_template_utils`):
//!
//! - `trim_blocks` and `lstrip_blocks` on, the template's single trailing newline dropped, no
//!   auto-escaping, `{% break %}` / `{% continue %}` available;
//! - variables `messages`, `add_generation_prompt`, `tools` and `documents` (both `none` unless
//!   given as extra variables), and `bos_token` / `eos_token` when the config sets them (transformers
//!   passes the tokenizer's special tokens; a token that is `null` stays undefined);
//! - `raise_exception(message)`, which aborts rendering with that message;
//! - `strftime_now(format)`, today's date and time: see [`strftime_now`] for what it supports;
//! - a `tojson` filter that writes JSON like Python's `json.dumps` (transformers' override of the
//!   Jinja2 filter): no HTML escaping, `", "` / `": "` separators, and the keyword arguments
//!   `indent`, `separators`, `sort_keys` and `ensure_ascii`;
//! - Python string, dict and list methods that templates call (`.strip()`, `.startswith(...)`,
//!   `.split(...)`, `.items()`, ...) through `minijinja-contrib`'s `pycompat`;
//! - transformers' `{% generation %}` ... `{% endgeneration %}` block (which only marks assistant
//!   text for masks) renders its body unchanged.
//!
//! Known differences from Jinja2: maps keep insertion order, but a `serde_json::Value` passed as
//! extra variables keeps whatever order `serde_json::Map` has (sorted keys unless `serde_json`'s
//! `preserve_order` feature is on), which shows in `tojson` output of such objects; `strftime_now`
//! uses UTC, where Python uses local time; `trim` uses Rust's notion of whitespace, where Python's
//! `str.strip` also strips the ASCII separators `\x1c`..`\x1f`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Rest, Serde, Value, ValueKind};
use minijinja::{AutoEscape, Environment, Error as JinjaError, ErrorKind, UndefinedBehavior};
use serde::{Deserialize, Serialize};

use crate::{CoreError, Result};

/// One message of a conversation, as `apply_chat_template` takes them: `{"role": ..., "content": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who speaks: `"system"`, `"user"`, `"assistant"`, or a template-specific role such as `"tool"`.
    pub role: String,
    /// The text of the message.
    pub content: String,
}

impl ChatMessage {
    /// A message with the given role and content.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A chat template with the special tokens it may refer to.
///
/// The template is compiled on each call to [`render_with`](Self::render_with); a syntax error
/// shows up there, as an error naming [`path`](Self::path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTemplate {
    template: String,
    bos_token: Option<String>,
    eos_token: Option<String>,
    path: PathBuf,
}

/// The path errors name for a template made with [`ChatTemplate::new`].
const INLINE_PATH: &str = "<chat_template>";

/// The template's name in minijinja's error messages (`... (in chat_template:LINE)`).
const TEMPLATE_NAME: &str = "chat_template";

impl ChatTemplate {
    /// Reads `chat_template`, `bos_token` and `eos_token` from a `tokenizer_config.json`.
    ///
    /// `chat_template` is either a string or a list of `{"name": ..., "template": ...}` objects, of
    /// which the one named `"default"` is taken. Newer transformers save the template in a
    /// `chat_template.jinja` file beside the config instead; when that file exists it is used, and
    /// takes priority over the JSON's `chat_template` as it does in transformers. If there is
    /// neither, the error names the config file. `bos_token` and
    /// `eos_token` may be strings, `AddedToken` objects (`{"content": ...}`), `null` or absent.
    pub fn from_tokenizer_config(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| CoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let fail = |message: String| CoreError::Tokenizer {
            path: path.to_path_buf(),
            message,
        };
        let config: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| fail(format!("invalid JSON: {e}")))?;
        let object = config
            .as_object()
            .ok_or_else(|| fail("expected a JSON object".to_string()))?;

        // As in transformers, a chat_template.jinja file beside the config takes priority.
        let sibling = path
            .parent()
            .unwrap_or_else(|| Path::new(""))
            .join("chat_template.jinja");
        let from_file = match std::fs::read_to_string(&sibling) {
            Ok(template) => Some(template),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(CoreError::Io {
                    path: sibling,
                    source,
                })
            }
        };
        let template = match (from_file, object.get("chat_template")) {
            (Some(template), _) => template,
            (None, Some(serde_json::Value::String(template))) => template.clone(),
            (None, Some(serde_json::Value::Array(variants))) => {
                pick_default_variant(variants).map_err(fail)?
            }
            (None, None | Some(serde_json::Value::Null)) => {
                return Err(fail(format!(
                    "no chat_template in this file and no {} beside it",
                    sibling.display()
                )))
            }
            (None, Some(other)) => {
                return Err(fail(format!(
                    "chat_template must be a string or a list of {{name, template}}, found {other}"
                )))
            }
        };
        let bos_token = special_token(object.get("bos_token"), "bos_token").map_err(fail)?;
        let eos_token = special_token(object.get("eos_token"), "eos_token").map_err(fail)?;
        Ok(Self {
            template,
            bos_token,
            eos_token,
            path: path.to_path_buf(),
        })
    }

    /// A template given as source text, with optional BOS and EOS token strings. Errors name the
    /// path `<chat_template>`.
    pub fn new(
        template: impl Into<String>,
        bos_token: Option<String>,
        eos_token: Option<String>,
    ) -> Self {
        Self {
            template: template.into(),
            bos_token,
            eos_token,
            path: PathBuf::from(INLINE_PATH),
        }
    }

    /// The template source.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The BOS token the template sees as `bos_token`, if any.
    pub fn bos_token(&self) -> Option<&str> {
        self.bos_token.as_deref()
    }

    /// The EOS token the template sees as `eos_token`, if any.
    pub fn eos_token(&self) -> Option<&str> {
        self.eos_token.as_deref()
    }

    /// The file the template came from (`<chat_template>` for [`new`](Self::new)); errors name it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renders like transformers'
    /// `apply_chat_template(messages, tokenize=False, add_generation_prompt=...)`.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        self.render_with(messages, add_generation_prompt, serde_json::Value::Null)
    }

    /// Like [`render`](Self::render), with extra template variables, as transformers passes extra
    /// keyword arguments of `apply_chat_template` to the template.
    ///
    /// `extra` is a JSON object (or `null` for none), e.g. `{"date_string": "26 Jul 2024"}` for
    /// Llama 3.x templates, or `{"tools": [...]}`. Its entries override `bos_token`, `eos_token`,
    /// `tools` and `documents`; `messages` and `add_generation_prompt` cannot be given there.
    pub fn render_with(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        extra: serde_json::Value,
    ) -> Result<String> {
        let fail = |message: String| CoreError::Tokenizer {
            path: self.path.clone(),
            message,
        };
        let extra = match extra {
            serde_json::Value::Null => serde_json::Map::new(),
            serde_json::Value::Object(map) => map,
            other => {
                return Err(fail(format!(
                    "extra chat-template variables must be a JSON object, found {other}"
                )))
            }
        };
        for reserved in ["messages", "add_generation_prompt"] {
            if extra.contains_key(reserved) {
                return Err(fail(format!(
                    "{reserved:?} cannot be passed as an extra chat-template variable"
                )));
            }
        }

        let mut context: BTreeMap<String, Value> = BTreeMap::new();
        context.insert("messages".into(), Value::from(Serde(messages)));
        context.insert(
            "add_generation_prompt".into(),
            Value::from(add_generation_prompt),
        );
        context.insert("tools".into(), Value::from(()));
        context.insert("documents".into(), Value::from(()));
        if let Some(bos) = &self.bos_token {
            context.insert("bos_token".into(), Value::from(bos.as_str()));
        }
        if let Some(eos) = &self.eos_token {
            context.insert("eos_token".into(), Value::from(eos.as_str()));
        }
        for (key, value) in extra {
            context.insert(key, Value::from(Serde(value)));
        }
        let context = Value::from(context);

        let env = environment().map_err(|e| fail(describe(&e)))?;
        let source = neutralize_generation_tags(&self.template);
        let template = env
            .template_from_named_str(TEMPLATE_NAME, &source)
            .map_err(|e| fail(format!("chat template does not compile: {}", describe(&e))))?;
        template
            .render(context)
            .map_err(|e| fail(format!("chat template failed: {}", describe(&e))))
    }
}

/// The template of the `"default"` entry of a list-form `chat_template`.
fn pick_default_variant(variants: &[serde_json::Value]) -> std::result::Result<String, String> {
    let mut names = Vec::new();
    for variant in variants {
        let name = variant.get("name").and_then(|n| n.as_str());
        if name == Some("default") {
            return variant
                .get("template")
                .and_then(|t| t.as_str())
                .map(str::to_owned)
                .ok_or_else(|| "chat_template entry \"default\" has no string template".into());
        }
        names.push(name.unwrap_or("<unnamed>").to_owned());
    }
    Err(format!(
        "chat_template lists no \"default\" template (found {names:?})"
    ))
}

/// A special token given as a string, an `AddedToken` object `{"content": ...}`, `null` or absent.
fn special_token(
    value: Option<&serde_json::Value>,
    key: &str,
) -> std::result::Result<Option<String>, String> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(serde_json::Value::Object(o)) => match o.get("content") {
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            _ => Err(format!("{key} object has no string \"content\"")),
        },
        Some(other) => Err(format!(
            "{key} must be a string or an AddedToken object, found {other}"
        )),
    }
}

/// minijinja's error text, followed by the errors it wraps.
fn describe(err: &JinjaError) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        let _ = write!(text, ": {inner}");
        source = inner.source();
    }
    text
}

/// The environment transformers renders chat templates in, rebuilt with minijinja.
fn environment() -> std::result::Result<Environment<'static>, JinjaError> {
    let mut env = Environment::new();
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(false)
            .build()?,
    );
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", |format: &str| strftime_now(format));
    env.add_filter("tojson", tojson);
    Ok(env)
}

/// `raise_exception(message)`: fails the render with `message`.
fn raise_exception(message: String) -> std::result::Result<Value, JinjaError> {
    Err(JinjaError::new(ErrorKind::InvalidOperation, message))
}

/// `strftime_now(format)`: the current time (UTC, from the system clock) formatted like Python's
/// `datetime.now().strftime(format)`.
///
/// Supported: `%d %e %m %Y %y %b %h %B %a %A %H %I %M %S %p %j %F %T %%`, and glibc's `%-d`, `%-m`,
/// `%-H`, `%-I`, `%-M`, `%-S`, `%-j` without zero padding. Month and day names are English (C
/// locale). Other directives are copied as written. Llama 3.1+ templates use `"%d %b %Y"`
/// (`"26 Jul 2024"`).
pub fn strftime_now(format: &str) -> String {
    let secs = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64) - 1,
    };
    format_unix_time(secs, format)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Formats seconds since the Unix epoch (UTC) with the directives [`strftime_now`] supports.
fn format_unix_time(unix_secs: i64, format: &str) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs_of_day = unix_secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (
        secs_of_day / 3600,
        (secs_of_day / 60) % 60,
        secs_of_day % 60,
    );
    let weekday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let day_of_year = days - days_from_civil(year, 1, 1) + 1;
    let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };
    let month_name = MONTHS[(month - 1) as usize];
    let weekday_name = WEEKDAYS[weekday];

    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let unpadded = chars.peek() == Some(&'-');
        if unpadded {
            chars.next();
        }
        let Some(directive) = chars.next() else {
            out.push('%');
            if unpadded {
                out.push('-');
            }
            break;
        };
        let number = |out: &mut String, value: i64, width: usize| {
            if unpadded {
                let _ = write!(out, "{value}");
            } else {
                let _ = write!(out, "{value:0width$}");
            }
        };
        match directive {
            'd' => number(&mut out, day as i64, 2),
            'e' => {
                let _ = write!(out, "{day:>2}");
            }
            'm' => number(&mut out, month as i64, 2),
            'Y' => {
                let _ = write!(out, "{year}");
            }
            'y' => number(&mut out, year.rem_euclid(100), 2),
            'b' | 'h' => out.push_str(&month_name[..3]),
            'B' => out.push_str(month_name),
            'a' => out.push_str(&weekday_name[..3]),
            'A' => out.push_str(weekday_name),
            'H' => number(&mut out, hour, 2),
            'I' => number(&mut out, hour12, 2),
            'M' => number(&mut out, minute, 2),
            'S' => number(&mut out, second, 2),
            'p' => out.push_str(if hour < 12 { "AM" } else { "PM" }),
            'j' => number(&mut out, day_of_year, 3),
            'F' => {
                let _ = write!(out, "{year}-{month:02}-{day:02}");
            }
            'T' => {
                let _ = write!(out, "{hour:02}:{minute:02}:{second:02}");
            }
            '%' => out.push('%'),
            other => {
                out.push('%');
                if unpadded {
                    out.push('-');
                }
                out.push(other);
            }
        }
    }
    out
}

/// (year, month 1..=12, day 1..=31) of a day counted from 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days from 1970-01-01 to the given date (proleptic Gregorian).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Options of Python's `json.dumps` that transformers' `tojson` filter exposes.
struct JsonStyle {
    ensure_ascii: bool,
    indent: Option<String>,
    item_separator: String,
    key_separator: String,
    sort_keys: bool,
}

/// The `tojson` filter of transformers: `json.dumps(x, ensure_ascii=False, indent=None,
/// separators=None, sort_keys=False)`, arguments by position or keyword.
fn tojson(
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> std::result::Result<String, JinjaError> {
    const NAMES: [&str; 4] = ["ensure_ascii", "indent", "separators", "sort_keys"];
    if args.len() > NAMES.len() {
        return Err(JinjaError::new(
            ErrorKind::TooManyArguments,
            "tojson takes at most 4 arguments",
        ));
    }
    let mut options: [Value; 4] = Default::default();
    for (slot, arg) in options.iter_mut().zip(args.iter()) {
        *slot = arg.clone();
    }
    for (i, name) in NAMES.iter().enumerate() {
        if let Some(v) = kwargs.get::<Option<Value>>(name)? {
            if i < args.len() {
                return Err(JinjaError::new(
                    ErrorKind::InvalidOperation,
                    format!("tojson got multiple values for argument {name:?}"),
                ));
            }
            options[i] = v;
        }
    }
    kwargs.assert_all_used()?;
    let [ensure_ascii, indent, separators, sort_keys] = options;

    let indent = match indent.kind() {
        ValueKind::Undefined | ValueKind::None => None,
        ValueKind::Number => {
            let n = i64::try_from(indent.clone())?;
            Some(" ".repeat(n.max(0) as usize))
        }
        ValueKind::String => Some(indent.as_str().unwrap_or_default().to_owned()),
        _ => {
            return Err(JinjaError::new(
                ErrorKind::InvalidOperation,
                "tojson indent must be an integer or a string",
            ))
        }
    };
    let (item_separator, key_separator) = match separators.kind() {
        ValueKind::Undefined | ValueKind::None => (
            if indent.is_some() { "," } else { ", " }.to_owned(),
            ": ".to_owned(),
        ),
        _ => {
            let parts: Vec<String> = separators
                .try_iter()?
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .unwrap_or_default();
            match <[String; 2]>::try_from(parts) {
                Ok([item, key]) => (item, key),
                Err(_) => {
                    return Err(JinjaError::new(
                        ErrorKind::InvalidOperation,
                        "tojson separators must be a pair of strings",
                    ))
                }
            }
        }
    };
    let style = JsonStyle {
        ensure_ascii: ensure_ascii.is_true(),
        indent,
        item_separator,
        key_separator,
        sort_keys: sort_keys.is_true(),
    };
    let mut out = String::new();
    write_json(&mut out, value, &style, 0)?;
    Ok(out)
}

/// Writes `value` as Python's `json.dumps` would with the given style.
fn write_json(
    out: &mut String,
    value: &Value,
    style: &JsonStyle,
    depth: usize,
) -> std::result::Result<(), JinjaError> {
    match value.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => out.push_str(&json_number(value)?),
        ValueKind::String => write_json_string(out, value.as_str().unwrap_or_default(), style),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            write_container(out, '[', ']', items.len(), style, depth, |out, i| {
                write_json(out, &items[i], style, depth + 1)
            })?;
        }
        ValueKind::Map => {
            let mut entries = Vec::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                entries.push((json_key(&key)?, item));
            }
            if style.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            write_container(out, '{', '}', entries.len(), style, depth, |out, i| {
                let (key, item) = &entries[i];
                write_json_string(out, key, style);
                out.push_str(&style.key_separator);
                write_json(out, item, style, depth + 1)
            })?;
        }
        kind => {
            return Err(JinjaError::new(
                ErrorKind::InvalidOperation,
                format!("Object of type {kind} is not JSON serializable"),
            ))
        }
    }
    Ok(())
}

/// Writes `[`/`{`, the `len` items (through `item`), and `]`/`}`, with the style's layout.
fn write_container(
    out: &mut String,
    open: char,
    close: char,
    len: usize,
    style: &JsonStyle,
    depth: usize,
    mut item: impl FnMut(&mut String, usize) -> std::result::Result<(), JinjaError>,
) -> std::result::Result<(), JinjaError> {
    out.push(open);
    if len == 0 {
        out.push(close);
        return Ok(());
    }
    for i in 0..len {
        if i > 0 {
            out.push_str(&style.item_separator);
        }
        if let Some(indent) = &style.indent {
            out.push('\n');
            out.push_str(&indent.repeat(depth + 1));
        }
        item(out, i)?;
    }
    if let Some(indent) = &style.indent {
        out.push('\n');
        out.push_str(&indent.repeat(depth));
    }
    out.push(close);
    Ok(())
}

/// A map key as `json.dumps` converts it: strings as they are, numbers, booleans and `None` to text.
fn json_key(key: &Value) -> std::result::Result<String, JinjaError> {
    match key.kind() {
        ValueKind::String => Ok(key.as_str().unwrap_or_default().to_owned()),
        ValueKind::Number => json_number(key),
        ValueKind::Bool => Ok(if key.is_true() { "true" } else { "false" }.to_owned()),
        ValueKind::None => Ok("null".to_owned()),
        kind => Err(JinjaError::new(
            ErrorKind::InvalidOperation,
            format!("keys must be str, int, float, bool or None, not {kind}"),
        )),
    }
}

/// A number as Python writes it in JSON: integers in full, floats like `float.__repr__`.
fn json_number(value: &Value) -> std::result::Result<String, JinjaError> {
    if value.is_integer() {
        return Ok(value.to_string());
    }
    let f = f64::try_from(value.clone())?;
    Ok(python_float_repr(f))
}

/// `repr(f)` for a Python float, with JSON's names for the non-finite values.
fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    // Shortest round-trip digits and the decimal exponent, e.g. "-1.2345e-7".
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::from(sign);
    if (-4..16).contains(&exponent) {
        if exponent >= 0 {
            let int_len = exponent as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.push_str(&"0".repeat(int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.push_str(&"0".repeat((-exponent - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.abs()
        );
    }
    out
}

/// A JSON string literal as Python's `json.dumps` writes it.
fn write_json_string(out: &mut String, s: &str, style: &JsonStyle) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if style.ensure_ascii && !(' '..='~').contains(&c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Rewrites transformers' `{% generation %}` / `{% endgeneration %}` tags (an extension that marks
/// assistant text and otherwise renders its body) into `{% if true %}` / `{% endif %}`, keeping any
/// `-` / `+` whitespace markers so that the block trims the same way.
fn neutralize_generation_tags(source: &str) -> Cow<'_, str> {
    if !source.contains("generation") {
        return Cow::Borrowed(source);
    }
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    let mut changed = false;
    while let Some(start) = rest.find("{%") {
        let (before, tag) = rest.split_at(start);
        out.push_str(before);
        let inner = &tag[2..];
        let marker_len = usize::from(inner.starts_with(['-', '+']));
        let after_marker = &inner[marker_len..];
        let word_start = after_marker.len() - after_marker.trim_start().len();
        let word_and_rest = &after_marker[word_start..];
        let replacement = [("endgeneration", "endif"), ("generation", "if true")]
            .into_iter()
            .find_map(|(word, repl)| {
                let tail = word_and_rest.strip_prefix(word)?;
                let tail_trimmed = tail.trim_start();
                let closes = tail_trimmed.starts_with("%}")
                    || tail_trimmed.starts_with("-%}")
                    || tail_trimmed.starts_with("+%}");
                closes.then_some((word.len(), repl))
            });
        match replacement {
            Some((word_len, repl)) => {
                let head_len = 2 + marker_len + word_start;
                out.push_str(&tag[..head_len]);
                out.push_str(repl);
                rest = &tag[head_len + word_len..];
                changed = true;
            }
            None => {
                out.push_str("{%");
                rest = &tag[2..];
            }
        }
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates_like_python_strftime() {
        // 2024-07-26T13:05:09Z, a Friday.
        let t = 1_721_999_109;
        assert_eq!(format_unix_time(t, "%d %b %Y"), "26 Jul 2024");
        assert_eq!(format_unix_time(t, "%d %B %Y"), "26 July 2024");
        assert_eq!(
            format_unix_time(t, "%A %a %j %F %T"),
            "Friday Fri 208 2024-07-26 13:05:09"
        );
        assert_eq!(
            format_unix_time(t, "%I:%M %p, %y %-m/%-d %% %Q"),
            "01:05 PM, 24 7/26 % %Q"
        );
        assert_eq!(
            format_unix_time(0, "%d %b %Y %H:%M:%S %a"),
            "01 Jan 1970 00:00:00 Thu"
        );
        assert_eq!(
            format_unix_time(951_782_400, "%d %b %Y %j"),
            "29 Feb 2000 060"
        );
        assert_eq!(
            format_unix_time(-1, "%Y-%m-%d %H:%M:%S"),
            "1969-12-31 23:59:59"
        );
        for days in [-800_000_i64, -1, 0, 59, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(strftime_now("%Y").len(), 4);
    }

    #[test]
    fn floats_print_like_python_repr() {
        for (f, text) in [
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123.456, "123.456"),
            (1e16, "1e+16"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (9999999999999998.0, "9999999999999998.0"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(python_float_repr(f), text);
        }
    }

    #[test]
    fn tojson_matches_python_json_dumps() {
        // Expected values are Python's json.dumps output for the same arguments.
        let t = ChatTemplate::new(
            concat!(
                r#"{% set x = {"b": [1, 2.5, none, true], "a": "q\"<&>\n", 3: {}} %}"#,
                "{{ x | tojson }}|{{ x | tojson(indent=2) }}|",
                r#"{{ {"b": 1, "a": [2]} | tojson(separators=(',', ':'), sort_keys=true) }}|"#,
                "{{ '\u{e9}\u{1}<\u{1F980}' | tojson(ensure_ascii=true) }}|{{ [] | tojson(indent=2) }}",
            ),
            None,
            None,
        );
        let text = t.render(&[], false).unwrap();
        let expected = [
            r#"{"b": [1, 2.5, null, true], "a": "q\"<&>\n", "3": {}}"#,
            "{\n  \"b\": [\n    1,\n    2.5,\n    null,\n    true\n  ],\n  \"a\": \"q\\\"<&>\\n\",\n  \"3\": {}\n}",
            r#"{"a":[2],"b":1}"#,
            r#""\u00e9\u0001<\ud83e\udd80""#,
            "[]",
        ]
        .join("|");
        assert_eq!(text, expected);
    }

    #[test]
    fn generation_tags_render_their_body() {
        let src = "{% for m in messages %}{%- generation -%} [{{ m.content }}] {%- endgeneration %}\n{% endfor %}";
        let rewritten = neutralize_generation_tags(src);
        assert_eq!(
            rewritten,
            "{% for m in messages %}{%- if true -%} [{{ m.content }}] {%- endif %}\n{% endfor %}"
        );
        let t = ChatTemplate::new(src, None, None);
        let text = t
            .render(
                &[
                    ChatMessage::new("user", "a"),
                    ChatMessage::new("assistant", "b"),
                ],
                false,
            )
            .unwrap();
        assert_eq!(text, "[a][b]");
        assert!(matches!(
            neutralize_generation_tags("{{ 'generation' }}{% if x %}{% endif %}"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn python_string_methods_work() {
        let t = ChatTemplate::new(
            "{% for m in messages %}{{ m.content.strip().split(',')[1] }}{% if m.role.startswith('us') %}!{% endif %}{% endfor %}",
            None,
            None,
        );
        let text = t
            .render(&[ChatMessage::new("user", "  a,b,c  ")], false)
            .unwrap();
        assert_eq!(text, "b!");
    }

    #[test]
    fn extra_variables_override_and_reserved_names_fail() {
        let t = ChatTemplate::new(
            "{{ bos_token }}|{{ eos_token }}|{{ tools }}|{{ flag }}",
            Some("<s>".into()),
            None,
        );
        let text = t
            .render_with(
                &[],
                false,
                serde_json::json!({"eos_token": "</s>", "flag": 3}),
            )
            .unwrap();
        assert_eq!(text, "<s>|</s>|None|3");
        let err = t
            .render_with(&[], false, serde_json::json!({"messages": []}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"messages\" cannot be passed"), "{err}");
        let err = t
            .render_with(&[], false, serde_json::json!([1]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("<chat_template>: tokenizer: extra"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_and_undefined_tokens() {
        let err = ChatTemplate::new("{% if %}", None, None)
            .render(&[], false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not compile"), "{err}");
        // A missing bos_token is undefined: it prints as nothing. Booleans print like Python's.
        let t = ChatTemplate::new("[{{ bos_token }}]{{ bos_token is defined }}", None, None);
        assert_eq!(t.render(&[], false).unwrap(), "[]False");
    }
}
