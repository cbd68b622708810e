#!/usr/bin/env python3
"""PyTorch eager baseline for `bench_lm`: the same config, shapes, loss and optimiser; same JSON fields.

    ~/pyref/bin/python scripts/bench_torch.py --config configs/bench/tiny.json --batch 8 --seq 128 \
        --steps 10 --mode forward|train|generate [--prompt-len P --new-tokens N]

forward: no-grad forward of random ids. train: forward + next-token cross-entropy + backward +
AdamW(lr 1e-4, betas 0.9/0.999, eps 1e-8, weight decay 0.01). generate: Hugging Face `generate`,
greedy, batch `--batch`, `--prompt-len` prompt tokens, exactly `--new-tokens` new tokens.
Attention is transformers' default (SDPA). Development tool only.
"""
import argparse
import json
import resource
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--mode", choices=["forward", "train", "generate"], default="forward")
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(args.config)
    model = AutoModelForCausalLM.from_config(config).float()
    vocab = config.vocab_size
    params = sum(p.numel() for p in model.parameters())

    if args.mode == "train":
        model.train()
        for m in model.modules():  # no dropout, as in the Rust benchmark
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    else:
        model.eval()

    timed = 0.0
    for step in range(args.warmup + args.steps):
        if args.mode == "generate":
            ids = torch.randint(0, vocab, (args.batch, args.prompt_len))
            start = time.perf_counter()
            with torch.no_grad():
                model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                               max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                               pad_token_id=0)
        else:
            ids = torch.randint(0, vocab, (args.batch, args.seq))
            start = time.perf_counter()
            if args.mode == "forward":
                with torch.no_grad():
                    model(input_ids=ids).logits[0, 0, 0].item()
            else:
                logits = model(input_ids=ids).logits
                loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, vocab), ids[:, 1:].reshape(-1))
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
        if step >= args.warmup:
            timed += time.perf_counter() - start

    tokens = args.batch * (args.new_tokens if args.mode == "generate" else args.seq) * args.steps
    print(json.dumps({
        "bench": "lm", "impl": f"pytorch {torch.__version__} eager, transformers", "config": args.config,
        "model_type": config.model_type, "parameters": params, "mode": args.mode, "device": "cpu",
        "dtype": "F32", "batch": args.batch, "seq": args.seq, "steps": args.steps, "seconds": timed,
        "tokens_per_s": tokens / timed, "ms_per_step": 1000 * timed / args.steps,
        "threads": torch.get_num_threads(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **({"prompt_len": args.prompt_len, "new_tokens": args.new_tokens} if args.mode == "generate" else {}),
    }))


if __name__ == "__main__":
    main()
