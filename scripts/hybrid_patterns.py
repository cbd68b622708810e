#!/usr/bin/env python3
"""Accuracy per reasoning pattern of hybrid decoding: reads the `eval_hybrid.json` written by
`codi_eval --baseline_mode ...` or `codi_pipeline` and prints, per mode, the most frequent
patterns with their count and accuracy. A pattern is the mode trace with each stretch of written
tokens as `E` and each latent run as `L<thoughts>` (e.g. `L3E`: a run of 3 thoughts right after
the question, then text).

Usage: python3 scripts/hybrid_patterns.py runs/codi-hybrid/seed-11/hybrid_codi/final_model/eval_hybrid.json [top]
"""
import json
import re
import sys
from collections import defaultdict


def pattern(trace):
    p = re.sub(r"e+", "E", trace)
    p = re.sub(r"\[(z+)\]", lambda m: f"L{len(m.group(1))}", p)
    return re.sub(r"\[(z*)$", lambda m: f"L{len(m.group(1))}...", p)


def main(path, top):
    for summary in json.load(open(path)):
        c = summary["controller"]
        name = summary["mode"]
        if name in ("adaptive", "random"):
            name += f" ({c.get('rule', 'entropy')} rule"
            name += f", tau={c['bot_threshold']:g})" if name.startswith("adaptive") and c.get("rule") == "step" else ")"
            if summary["mode"] == "random":
                name += f" p={c['explicit_probability']:g}"
        groups = defaultdict(lambda: [0, 0])
        for r in summary["records"]:
            g = groups[pattern(r["trace"])]
            g[0] += 1
            g[1] += bool(r["correct"])
        print(f"{name}: accuracy {100 * summary['accuracy']:.1f} %")
        for p, (n, ok) in sorted(groups.items(), key=lambda x: -x[1][0])[:top]:
            print(f"  {p:16s} {n:5d} questions  {100 * ok / n:5.1f} %")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 6)
