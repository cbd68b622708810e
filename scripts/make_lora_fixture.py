#!/usr/bin/env python3
"""Writes the committed LoRA fixtures of latent-core: PEFT adapters on the tiny qwen2 and gpt2 parity
models, with the adapted and merged models' logits.

    ~/pyref/bin/pip install peft
    ~/pyref/bin/python scripts/make_lora_fixture.py

Reads crates/latent-core/tests/fixtures/{qwen2,gpt2}/ (written by make_lm_fixtures.py) and writes
crates/latent-core/tests/fixtures/lora/<name>/{adapter_config.json, adapter_model.safetensors,
expected.safetensors}. lora_B is re-drawn non-zero (a fresh adapter would change nothing), and so is
the modules_to_save copy, so every part of the adapter shows in the logits.

expected.safetensors: `single.logits` (PEFT model, eval mode) and `merged.logits` (after
`merge_and_unload`), both for the parity fixtures' `single` ids.
"""
import json
import os
import sys

import peft
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

ROOT = os.path.join(os.path.dirname(__file__), "..", "crates", "latent-core", "tests", "fixtures")

ADAPTERS = {
    # Every linear of a Llama-style block; a trainable copy of the final norm.
    "qwen2": dict(target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                  modules_to_save=["norm"]),
    # The fused c_attn, both c_proj (attention and MLP) and c_fc; Conv1D is stored [in, out].
    "gpt2": dict(target_modules=["c_attn", "c_proj", "c_fc"], modules_to_save=["ln_f"], fan_in_fan_out=True),
}


def main():
    for seed, (name, extra) in enumerate(sorted(ADAPTERS.items())):
        torch.manual_seed(100 + seed)
        base_dir = os.path.join(ROOT, name)
        inputs = json.load(open(os.path.join(base_dir, "inputs.json")))
        ids = torch.tensor(inputs["single"])
        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
        config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.05, bias="none", task_type="CAUSAL_LM", **extra)
        model = get_peft_model(base, config)
        with torch.no_grad():
            for key, p in model.named_parameters():
                if "lora_B" in key:
                    p.copy_(torch.randn_like(p) * 0.3)
                elif "modules_to_save" in key:
                    p.add_(torch.randn_like(p) * 0.2)
        model.eval()
        out = os.path.join(ROOT, "lora", name)
        os.makedirs(out, exist_ok=True)
        model.save_pretrained(out)
        os.remove(os.path.join(out, "README.md"))  # PEFT's model card template
        config_path = os.path.join(out, "adapter_config.json")
        saved = json.load(open(config_path))
        saved["base_model_name_or_path"] = f"crates/latent-core/tests/fixtures/{name}"
        with open(config_path, "w") as f:
            json.dump(saved, f, indent=2, sort_keys=True)
            f.write("\n")
        with torch.no_grad():
            logits = model(ids).logits
            merged = model.merge_and_unload()(ids).logits
        save_file({"single.logits": logits.contiguous(), "merged.logits": merged.contiguous()},
                  os.path.join(out, "expected.safetensors"),
                  metadata={"peft": peft.__version__, "torch": torch.__version__})
        print(f"{name}: wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
