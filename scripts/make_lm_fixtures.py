#!/usr/bin/env python3
"""Writes the committed parity fixtures of latent-core: tiny random models of each family, saved with
`transformers`, plus their logits and hidden states for fixed inputs.

    python3 -m venv ~/pyref && ~/pyref/bin/pip install -r scripts/requirements.txt
    ~/pyref/bin/python scripts/make_lm_fixtures.py

Output: crates/latent-core/tests/fixtures/<name>/{config.json, model.safetensors, inputs.json, expected.safetensors};
inputs.json also holds transformers' greedy `generate` continuations (single prompt and the left-padded batch).
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from lm_fixtures import build_model, ensure_dir, left_padded, reference_outputs, save_reference, write_json  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "crates", "latent-core", "tests", "fixtures")

COMMON = dict(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2, max_position_embeddings=64)
FIXTURES = {
    # GQA 4:2, untied head, Llama-3 rope scaling, theta 500k.
    "llama": ("llama", dict(COMMON, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                            rope_theta=500000.0,
                            rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                              high_freq_factor=4.0, original_max_position_embeddings=16))),
    # q/k/v biases, tied embeddings, GQA 4:1.
    "qwen2": ("qwen2", dict(COMMON, num_attention_heads=4, num_key_value_heads=1, tie_word_embeddings=True,
                            rms_norm_eps=1e-6)),
    # explicit head_dim (heads * head_dim != hidden), per-head q/k norm.
    "qwen3": ("qwen3", dict(COMMON, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                            tie_word_embeddings=False)),
    # learned positions, LayerNorm, tanh GELU, Conv1D layout, tied head.
    "gpt2": ("gpt2", dict(vocab_size=96, n_embd=32, n_layer=2, n_head=4, n_positions=64, n_inner=48, bos_token_id=1, eos_token_id=2)),
}

SINGLE = [[5, 17, 42, 8, 91, 33, 2]]
BATCH = [[11, 3, 57, 23, 9, 70, 4], [64, 12, 88, 31]]
GREEDY_TOKENS = 12


def main():
    for seed, (name, (model_type, config)) in enumerate(sorted(FIXTURES.items())):
        out = ensure_dir(os.path.join(ROOT, name))
        model = build_model(model_type, seed, **config)
        model.save_pretrained(out, safe_serialization=True)
        tensors = reference_outputs(model, torch.tensor(SINGLE), prefix="single.")
        ids, mask, positions = left_padded(BATCH)
        tensors.update(reference_outputs(model, ids, mask, positions, prefix="batch."))
        save_reference(os.path.join(out, "expected.safetensors"), tensors)
        greedy = dict(do_sample=False, max_new_tokens=GREEDY_TOKENS, min_new_tokens=GREEDY_TOKENS, pad_token_id=0)
        with torch.no_grad():
            single = model.generate(torch.tensor(SINGLE), attention_mask=torch.ones(1, len(SINGLE[0]), dtype=torch.long),
                                    **greedy)[:, len(SINGLE[0]):]
            batch = model.generate(ids, attention_mask=mask, **greedy)[:, ids.shape[1]:]
        write_json(os.path.join(out, "inputs.json"), {
            "single": SINGLE,
            "batch_ids": ids.tolist(),
            "batch_mask": mask.tolist(),
            "greedy_new_tokens": GREEDY_TOKENS,
            "greedy_single": single.tolist(),
            "greedy_batch": batch.tolist(),
            "transformers_version": __import__("transformers").__version__,
            "torch_version": torch.__version__,
        })
        for extra in ("generation_config.json",):
            path = os.path.join(out, extra)
            if os.path.exists(path):
                os.remove(path)
        print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters -> {out}")


if __name__ == "__main__":
    main()
