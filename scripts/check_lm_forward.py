#!/usr/bin/env python3
"""Checks the `lm_forward` and `lm_save` examples against transformers on model directories the
Rust tests never saw (other widths, GQA ratios, head dims, tied/untied heads, rope scaling).

    cargo build --release --example lm_forward --example lm_save
    ~/pyref/bin/python scripts/check_lm_forward.py [--bin target/release/examples]

For each config: transformers builds a random model and saves it; `lm_forward` runs on the saved
directory; logits and every hidden state must match within 1e-4. Then `lm_save` writes a seeded
random model from the same config, transformers loads that directory, and its logits must match
`lm_forward`'s on it; and the transformers model converted by `lm_save` (f32 and bf16 on disk)
loads back in transformers with the same logits (f32: within 1e-4; bf16: reported). Prints one JSON line per case and exits non-zero on any failure.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

sys.path.insert(0, os.path.dirname(__file__))
from lm_fixtures import build_model  # noqa: E402

CASES = [
    ("llama", dict(vocab_size=211, hidden_size=96, intermediate_size=160, num_hidden_layers=3,
                   num_attention_heads=6, num_key_value_heads=2, tie_word_embeddings=True)),
    ("llama", dict(vocab_size=128, hidden_size=64, intermediate_size=100, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=4, head_dim=24, attention_bias=True, mlp_bias=True,
                   rope_theta=1000.0, rope_scaling=dict(rope_type="linear", factor=4.0))),
    ("llama", dict(vocab_size=300, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                   num_attention_heads=8, num_key_value_heads=1, rms_norm_eps=1e-5, rope_theta=500000.0,
                   rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                     original_max_position_embeddings=32))),
    ("qwen2", dict(vocab_size=151, hidden_size=80, intermediate_size=144, num_hidden_layers=3,
                   num_attention_heads=5, num_key_value_heads=1, tie_word_embeddings=False, rope_theta=1e6)),
    ("qwen3", dict(vocab_size=190, hidden_size=48, intermediate_size=72, num_hidden_layers=2,
                   num_attention_heads=6, num_key_value_heads=3, head_dim=32, tie_word_embeddings=True)),
    ("qwen3", dict(vocab_size=64, hidden_size=64, intermediate_size=64, num_hidden_layers=4,
                   num_attention_heads=2, num_key_value_heads=1, head_dim=8, attention_bias=True)),
    ("gpt2", dict(vocab_size=257, n_embd=72, n_layer=3, n_head=6, n_positions=40)),
    ("gpt2", dict(vocab_size=100, n_embd=48, n_layer=2, n_head=3, n_positions=32, n_inner=200,
                  activation_function="gelu", tie_word_embeddings=False)),
]


def run(cmd):
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr}")
    return res.stdout


def max_diff(a, b):
    return (a.float() - b.float()).abs().max().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/examples")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    failed = 0
    for i, (model_type, config) in enumerate(CASES):
        with tempfile.TemporaryDirectory() as tmp:
            model = build_model(model_type, 100 + i, **config)
            hf_dir = os.path.join(tmp, "hf")
            model.save_pretrained(hf_dir)
            gen = torch.Generator().manual_seed(i)
            ids = torch.randint(0, model.config.vocab_size, (1, 9), generator=gen)
            with torch.no_grad():
                ref = model(input_ids=ids, output_hidden_states=True)
            out = os.path.join(tmp, "out.safetensors")
            run([f"{args.bin}/lm_forward", "--model", hf_dir, "--input-ids", ",".join(map(str, ids[0].tolist())),
                 "--out", out])
            got = load_file(out)
            diffs = [max_diff(got["logits"], ref.logits)]
            diffs += [max_diff(got[f"hidden_states.{j}"], h) for j, h in enumerate(ref.hidden_states)]
            n_hidden = sum(k.startswith("hidden_states.") for k in got)

            # Rust-written random model -> transformers.
            rust_dir = os.path.join(tmp, "rust")
            run([f"{args.bin}/lm_save", "--config", os.path.join(hf_dir, "config.json"), "--seed", str(i),
                 "--out", rust_dir])
            reloaded = AutoModelForCausalLM.from_pretrained(rust_dir, attn_implementation="eager").float().eval()
            with torch.no_grad():
                hf_logits = reloaded(input_ids=ids).logits
            out2 = os.path.join(tmp, "out2.safetensors")
            run([f"{args.bin}/lm_forward", "--model", rust_dir, "--input-ids", ",".join(map(str, ids[0].tolist())),
                 "--out", out2])
            save_diff = max_diff(load_file(out2)["logits"], hf_logits)

            # transformers model -> Rust load + save (bf16 on disk too) -> transformers: same logits.
            for dtype, tol in (("f32", args.tol), ("bf16", None)):
                conv_dir = os.path.join(tmp, f"conv-{dtype}")
                run([f"{args.bin}/lm_save", "--model", hf_dir, "--out", conv_dir, "--save-dtype", dtype])
                conv = AutoModelForCausalLM.from_pretrained(conv_dir, attn_implementation="eager").float().eval()
                with torch.no_grad():
                    conv_logits = conv(input_ids=ids).logits
                if tol is not None:
                    save_diff = max(save_diff, max_diff(conv_logits, ref.logits))
                else:
                    bf16_diff = max_diff(conv_logits, ref.logits)

            ok = max(diffs) <= args.tol and n_hidden == len(ref.hidden_states) and save_diff <= args.tol
            failed += not ok
            print(json.dumps({"case": i, "model_type": model_type, "config": config, "ok": ok,
                              "max_abs_diff_forward": max(diffs), "hidden_states": n_hidden,
                              "max_abs_diff_rust_saved_in_transformers": save_diff,
                              "max_abs_diff_rust_saved_bf16_in_transformers": bf16_diff,
                              "logits_scale": ref.logits.abs().max().item()}))
    print(f"{len(CASES) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
