#!/usr/bin/env python3
"""Shared helpers for the parity scripts: tiny random HF causal LMs and their reference outputs.

Development tool only (see scripts/requirements.txt); the Rust workspace never runs Python.
"""
import json
import os

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, Qwen2Config, Qwen3Config

CONFIG_CLASSES = {"llama": LlamaConfig, "qwen2": Qwen2Config, "qwen3": Qwen3Config, "gpt2": GPT2Config}


def build_model(model_type, seed, **config):
    """A randomly initialised model whose weights are large enough for logits of order one."""
    torch.manual_seed(seed)
    cfg = CONFIG_CLASSES[model_type](**config)
    cfg._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").float().eval()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and ("norm" in name or "ln_" in name) and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=gen))
    return model


def left_padded(seqs, pad_id=0):
    """ids, attention mask and position ids (count of real tokens minus one) for left padding."""
    width = max(len(s) for s in seqs)
    ids = torch.tensor([[pad_id] * (width - len(s)) + s for s in seqs])
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, positions


@torch.no_grad()
def reference_outputs(model, ids, mask=None, positions=None, prefix=""):
    """logits and hidden states, as f32 tensors keyed for a safetensors file."""
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, output_hidden_states=True)
    tensors = {f"{prefix}logits": out.logits.float().contiguous()}
    for i, h in enumerate(out.hidden_states):
        tensors[f"{prefix}hidden_states.{i}"] = h.float().contiguous()
    return tensors


def save_reference(path, tensors):
    save_file({k: v.contiguous() for k, v in tensors.items()}, path)


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")


def ensure_dir(path):
    os.makedirs(path, exist_ok=True)
    return path
