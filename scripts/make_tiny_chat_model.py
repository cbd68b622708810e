#!/usr/bin/env python3
"""Writes crates/latent-core/tests/fixtures/tiny-chat/: a tiny random Qwen2 model with a real
byte-level BPE tokenizer (trained here on a few sentences) and the Qwen2.5 chat template, so the
`generate` example and tokenizer/chat code paths run on a complete model directory offline.

    ~/pyref/bin/python scripts/make_tiny_chat_model.py
"""
import json
import os
import shutil
import sys

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

sys.path.insert(0, os.path.dirname(__file__))
from lm_fixtures import build_model  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "crates", "latent-core", "tests", "fixtures")
OUT = os.path.join(ROOT, "tiny-chat")
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TEXT = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "How many clips did Natalia sell altogether in April and May?",
    "The answer is 72. Let us think step by step.",
    "You are a helpful assistant. What is 3 times 4 plus 5?",
    "system user assistant hello world 0 1 2 3 4 5 6 7 8 9 + - * / = ?",
]


def main():
    os.makedirs(OUT, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TEXT * 20, trainer)
    tok.save(os.path.join(OUT, "tokenizer.json"))
    vocab = tok.get_vocab_size()

    with open(os.path.join(ROOT, "chat", "qwen2.5", "tokenizer_config.json")) as f:
        qwen = json.load(f)
    with open(os.path.join(OUT, "tokenizer_config.json"), "w") as f:
        json.dump({"chat_template": qwen["chat_template"], "bos_token": None, "eos_token": "<|im_end|>",
                   "pad_token": "<|endoftext|>", "_source": "chat template: " + qwen["_source"]}, f, indent=1)
        f.write("\n")

    eos = tok.token_to_id("<|im_end|>")
    model = build_model("qwen2", 7, vocab_size=vocab, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                        tie_word_embeddings=True, eos_token_id=eos, bos_token_id=None)
    model.save_pretrained(OUT)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(OUT, extra)):
            os.remove(os.path.join(OUT, extra))
    print(f"vocab {vocab}, eos {eos}, {sum(p.numel() for p in model.parameters())} parameters -> {OUT}")


if __name__ == "__main__":
    main()
