#!/usr/bin/env python
"""Writes the expected chat-template renderings that `latent-core`'s chat-template tests compare against.

For every directory under crates/latent-core/tests/fixtures/chat/ that holds a `tokenizer_config.json`
(with just `chat_template`, `bos_token` and `eos_token`), this renders a fixed list of conversations with
transformers' own `apply_chat_template(..., tokenize=False)` and writes `expected.json` next to it:

    {"cases": [{"name", "messages", "add_generation_prompt", "extra", "text"}, ...],
     "transformers_version": ..., "jinja2_version": ...}

`extra` holds the additional template variables passed as keyword arguments to `apply_chat_template`
(transformers forwards them to the template). Llama 3.x templates print today's date through
`strftime_now` unless `date_string` is given, so every Llama case passes `date_string` to stay
deterministic.

The tokenizer is a stand-in: a `PreTrainedTokenizerFast` over a tiny word-level vocabulary that knows only
the special tokens, carrying the real chat template. With `tokenize=False`, `apply_chat_template` renders
through the same code path as for the real tokenizer (special-tokens map + `render_jinja_template`), so
no model files or network are needed. As a cross-check, every case is also rendered with
`transformers.utils.chat_template_utils.render_jinja_template` directly.

Run (needs transformers and jinja2; no network):

    /root/pyref/bin/python scripts/make_chat_fixtures.py
"""

import json
import sys
from pathlib import Path

import jinja2
import transformers
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast
from transformers.utils.chat_template_utils import render_jinja_template

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "crates" / "latent-core" / "tests" / "fixtures" / "chat"

# A fixed date for the Llama 3.x templates, which otherwise call strftime_now("%d %b %Y").
LLAMA_DATE = "05 Mar 2025"

SYSTEM = "You are a terse assistant. Answer in one sentence."
MULTI_TURN = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "What is 2 + 3?"},
    {"role": "assistant", "content": "2 + 3 = 5."},
    {"role": "user", "content": "And times 4?"},
]

# Tool schemas with every object's keys already in sorted order, so the expected `tojson` output does
# not depend on whether a JSON map keeps insertion order (Python dicts do; serde_json's default
# map sorts). Values carry quotes, <, >, & and non-ASCII text to check that `tojson` neither
# HTML-escapes nor ASCII-escapes, as transformers' override of the filter does not.
TOOLS = [
    {
        "function": {
            "description": "Get the current weather in a city, e.g. \"Zürich\" <or> \"São Paulo\" & co.",
            "name": "get_weather",
            "parameters": {
                "properties": {
                    "city": {"description": "The city's name", "type": "string"},
                    "days": {"description": "How many days ahead", "type": "integer"},
                    "unit": {"enum": ["celsius", "fahrenheit"], "type": "string"},
                },
                "required": ["city"],
                "type": "object",
            },
        },
        "type": "function",
    }
]


def cases_for(name):
    """The list of (name, messages, add_generation_prompt, extra) cases for one fixture directory."""
    llama = name.startswith("llama")
    extra = {"date_string": LLAMA_DATE} if llama else {}
    tool_role = "ipython" if llama else "tool"
    cases = [
        ("single_user", [{"role": "user", "content": "Hello!"}], True, extra),
        ("multi_turn_generation_prompt", MULTI_TURN, True, extra),
        ("multi_turn_no_generation_prompt", MULTI_TURN, False, extra),
        (
            "whitespace_and_newline",
            [{"role": "user", "content": "  \n Line one,\nline two.  \t\n"}],
            True,
            extra,
        ),
        (
            "system_with_whitespace",
            [
                {"role": "system", "content": "\n  Be brief.  \n"},
                {"role": "user", "content": "Hi"},
            ],
            True,
            extra,
        ),
        (
            "no_system_multi_turn",
            [
                {"role": "user", "content": "Name a colour."},
                {"role": "assistant", "content": "Blue."},
                {"role": "user", "content": "Another?"},
            ],
            True,
            extra,
        ),
        (
            "unicode",
            [{"role": "user", "content": "Grüße, 世界! 🦀 \"quotes\" <tags> & \\backslash\\"}],
            True,
            extra,
        ),
        (
            "tool_result_message",
            [
                {"role": "user", "content": "What's the weather in Paris?"},
                {"role": tool_role, "content": "{\"temperature\": 21, \"sky\": \"clear\"}"},
                {"role": tool_role, "content": "second result"},
            ],
            True,
            extra,
        ),
        (
            "tools_in_extra",
            [{"role": "user", "content": "Weather in Zürich?"}],
            True,
            {**extra, "tools": TOOLS},
        ),
    ]
    return cases


def stand_in_tokenizer(config):
    """A PreTrainedTokenizerFast that knows only the special tokens and carries the real chat template."""
    special = {k: config[k] for k in ("bos_token", "eos_token") if config.get(k) is not None}
    vocab = {"<unk>": 0}
    for token in special.values():
        vocab.setdefault(token, len(vocab))
    backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    return PreTrainedTokenizerFast(tokenizer_object=backend, chat_template=config["chat_template"], **special)


def main():
    dirs = sorted(p.parent for p in FIXTURES.glob("*/tokenizer_config.json"))
    if not dirs:
        sys.exit(f"no */tokenizer_config.json under {FIXTURES}")
    for d in dirs:
        config = json.loads((d / "tokenizer_config.json").read_text(encoding="utf-8"))
        tokenizer = stand_in_tokenizer(config)
        special = {k: config[k] for k in ("bos_token", "eos_token") if config.get(k) is not None}
        out = []
        for case_name, messages, add_generation_prompt, extra in cases_for(d.name):
            text = tokenizer.apply_chat_template(
                messages,
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
                **extra,
            )
            direct, _ = render_jinja_template(
                conversations=[messages],
                chat_template=config["chat_template"],
                add_generation_prompt=add_generation_prompt,
                **{**special, **extra},
            )
            if direct[0] != text:
                sys.exit(f"{d.name}/{case_name}: apply_chat_template and render_jinja_template disagree")
            out.append(
                {
                    "name": case_name,
                    "messages": messages,
                    "add_generation_prompt": add_generation_prompt,
                    "extra": extra,
                    "text": text,
                }
            )
        expected = {
            "cases": out,
            "transformers_version": transformers.__version__,
            "jinja2_version": jinja2.__version__,
        }
        path = d / "expected.json"
        path.write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)} ({len(out)} cases)")


if __name__ == "__main__":
    main()
