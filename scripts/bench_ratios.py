#!/usr/bin/env python3
"""The table of `scripts/bench_lm_vs_torch.sh`: reads its JSON lines (latent-core and PyTorch runs of
the same rows, in turn) and prints, per row, both sides' median tokens/s, the median of the pairwise
ratios latent-core / PyTorch, both peak RSS and (decoding rows) the vector / token step ratio.
Standard library only.

    python3 scripts/bench_ratios.py bench.jsonl
"""
import json
import statistics
import sys
from collections import OrderedDict


def row_key(run):
    return (run["config"].split("/")[-1].removesuffix(".json"), run["mode"], run["batch"],
            run.get("new_tokens") if run["mode"] == "generate" else run.get("seq"))


def main(path):
    rows = OrderedDict()
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            run = json.loads(line)
            side = "ours" if run["impl"].startswith("latent-core") else "torch"
            rows.setdefault(row_key(run), {"ours": [], "torch": []})[side].append(run)
    print("| model | mode | batch | seq / new tokens | latent-core tokens/s | PyTorch tokens/s "
          "| ratio (median of pairs) | latent-core peak RSS | PyTorch peak RSS | vector / token step |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (model, mode, batch, length), sides in rows.items():
        ours, torch = sides["ours"], sides["torch"]
        med = lambda runs, k: statistics.median(r[k] for r in runs) if runs else float("nan")
        ratios = [a["tokens_per_s"] / b["tokens_per_s"] for a, b in zip(ours, torch)]
        ratio = statistics.median(ratios) if ratios else float("nan")
        vector = med(ours, "vector_over_token_step") if mode == "generate" else None
        print(f"| {model} | {mode} | {batch} | {length} | {med(ours, 'tokens_per_s'):,.1f} "
              f"| {med(torch, 'tokens_per_s'):,.1f} | **{ratio:.2f}×** ({len(ratios)} pairs, "
              f"{min(ratios, default=float('nan')):.2f}–{max(ratios, default=float('nan')):.2f}) "
              f"| {med(ours, 'peak_rss_mb'):,.0f} MB | {med(torch, 'peak_rss_mb'):,.0f} MB "
              f"| {'' if vector is None else f'{vector:.2f}'} |")


if __name__ == "__main__":
    main(sys.argv[1])
