#!/usr/bin/env python3
"""Checks the `hrpo_forward` example against transformers + peft on Qwen2 and Llama adapters the
Rust tests never saw (other widths, GQA ratios, ranks, tied/untied heads, rope scaling, the
projection saved too), in both directions.

    cargo build --release --example hrpo_forward
    ~/pyref/bin/python scripts/check_hrpo_forward.py [--bin target/release/examples]

For each case: transformers builds a random base model and saves it; HRPO's residual modules are
attached to its `model.` (scripts/hrpo_reference.py); peft wraps it with LoRA on q,k,v,o,gate,up,
down and the residual in `modules_to_save`, every adapter weight is re-drawn non-zero, and the adapter
is saved. `hrpo_forward` runs on base + adapter with a random thinking mask and states; its logits
must match the PEFT model's mixed forward within 1e-4. `--save-adapter` writes the adapter back from
Rust; `PeftModel.from_pretrained` loads it into a fresh base and must give the same logits.
Prints one JSON line per case and exits non-zero on any failure.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

sys.path.insert(0, os.path.dirname(__file__))
from hrpo_reference import RESIDUAL_MODULES, attach_residual, mixed_embeds  # noqa: E402
from lm_fixtures import build_model  # noqa: E402

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
CASES = [
    # (family, config, lora rank, alpha, also save a thinking_projection)
    ("qwen2", dict(vocab_size=151, hidden_size=80, intermediate_size=144, num_hidden_layers=3,
                   num_attention_heads=5, num_key_value_heads=1, tie_word_embeddings=False, rope_theta=1e6), 8, 16,
     False),
    ("qwen2", dict(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True), 4, 4, True),
    ("llama", dict(vocab_size=211, hidden_size=96, intermediate_size=160, num_hidden_layers=3,
                   num_attention_heads=6, num_key_value_heads=2, tie_word_embeddings=True), 2, 8, False),
    ("llama", dict(vocab_size=300, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                   num_attention_heads=8, num_key_value_heads=1, rms_norm_eps=1e-5, rope_theta=500000.0,
                   rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                     original_max_position_embeddings=32)), 16, 32, False),
]


def run(cmd):
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr}")
    return res.stdout


def with_residual(base_dir, hidden, seed, projection):
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    attach_residual(model.model, hidden, generator=torch.Generator().manual_seed(seed))
    if projection:
        model.model.thinking_projection = torch.nn.Linear(hidden, hidden, bias=False)
    return model


def mixed_logits(peft_model, ids, mask, states):
    inner = peft_model.base_model.model.model
    with torch.no_grad():
        embeds = mixed_embeds(inner, inner.thinking_residual_gate_r, inner.thinking_residual_gate_i,
                              inner.thinking_residual_Lambda, ids, mask, states)
        return peft_model(inputs_embeds=embeds).logits


def check(case_index, family, config, r, alpha, projection, bin_dir, tmp):
    g = torch.Generator().manual_seed(1000 + case_index)
    base = build_model(family, 500 + case_index, **config)
    base_dir = os.path.join(tmp, f"base{case_index}")
    base.save_pretrained(base_dir, safe_serialization=True)
    hidden = config["hidden_size"]
    saved = RESIDUAL_MODULES + (["thinking_projection"] if projection else [])
    peft_model = get_peft_model(with_residual(base_dir, hidden, case_index, projection),
                                LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=TARGETS,
                                           modules_to_save=saved, task_type="CAUSAL_LM"))
    with torch.no_grad():
        for key, p in peft_model.named_parameters():
            if "lora_B" in key or ("modules_to_save" in key and "Lambda" not in key):
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            elif "modules_to_save" in key:
                u = torch.empty(p.shape).uniform_(0.3, 0.9, generator=g)
                p.copy_(-torch.log(u ** (-1.0 / 8.0) - 1))
    peft_model.eval()
    adapter_dir = os.path.join(tmp, f"adapter{case_index}")
    peft_model.save_pretrained(adapter_dir)

    seq = 9
    ids = torch.randint(0, config["vocab_size"], (1, seq), generator=g)
    mask = torch.rand(1, seq, generator=g) < 0.5
    mask[0, 0] = False
    mask[0, 1] = True
    scale = base.get_input_embeddings().weight.norm(dim=-1).mean()
    states = torch.randn(seq, hidden, generator=g)
    states = states / states.norm(dim=-1, keepdim=True) * scale
    states_path = os.path.join(tmp, f"states{case_index}.safetensors")
    save_file({"thinking_states": states.contiguous()}, states_path)
    out_path = os.path.join(tmp, f"out{case_index}.safetensors")
    resaved = os.path.join(tmp, f"resaved{case_index}")
    run([os.path.join(bin_dir, "hrpo_forward"), "--model", base_dir, "--adapter", adapter_dir,
         "--input-ids", ",".join(map(str, ids[0].tolist())),
         "--thinking-mask", ",".join(str(int(m)) for m in mask[0].tolist()),
         "--thinking-states", states_path, "--out", out_path, "--save-adapter", resaved])
    rust = load_file(out_path)["logits"]
    reference = mixed_logits(peft_model, ids, mask, states.unsqueeze(0))
    diff = (rust - reference).abs().max().item()
    plain = (reference - mixed_logits(peft_model, ids, torch.zeros_like(mask), states.unsqueeze(0))).abs().max().item()

    reloaded = PeftModel.from_pretrained(with_residual(base_dir, hidden, 99, projection), resaved).eval()
    back = (mixed_logits(reloaded, ids, mask, states.unsqueeze(0)) - reference).abs().max().item()
    ok = diff <= 1e-4 and back <= 1e-4 and plain > 1e-2
    print(json.dumps(dict(case=case_index, family=family, hidden=hidden, r=r, projection=projection,
                          mixed_positions=int(mask.sum()), max_abs_diff=diff, rust_saved_in_peft=back,
                          mixing_effect=plain, ok=ok)))
    return ok


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=os.path.join("target", "release", "examples"))
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, (family, config, r, alpha, projection) in enumerate(CASES):
            try:
                failures += not check(i, family, config, r, alpha, projection, args.bin, tmp)
            except Exception as err:  # report and continue with the other cases
                print(json.dumps(dict(case=i, family=family, error=str(err), ok=False)))
                failures += 1
    print(f"{len(CASES) - failures} passed, {failures} failed", file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
