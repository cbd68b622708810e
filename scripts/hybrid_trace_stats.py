#!/usr/bin/env python3
"""Where hybrid decoding enters latent mode: reads the `eval_hybrid.json` written by
`codi_eval --baseline_mode ...` or `codi_pipeline` and prints, per mode, how many latent runs
start at a CoT step boundary (right after a `>>` token, or before any text) and how many start
inside an equation, with the accuracy of questions with and without a latent run.

Usage: python3 scripts/hybrid_trace_stats.py runs/codi-hybrid/hybrid_codi/final_model/eval_hybrid.json
(Word-level tokenizers only: the written text is split on spaces.)
"""
import json
import sys


def main(path):
    for summary in json.load(open(path)):
        mode = summary["mode"]
        p = summary["controller"]["explicit_probability"]
        name = f"random p={p}" if mode == "random" else mode
        boundary = inside = 0
        with_run = [0, 0]
        without_run = [0, 0]
        for r in summary["records"]:
            words = r["output"].split()
            written = 0
            runs = 0
            for symbol in r["trace"]:
                if symbol == "e":
                    written += 1
                elif symbol == "[":
                    runs += 1
                    if written == 0 or words[written - 1] == ">>":
                        boundary += 1
                    else:
                        inside += 1
            bucket = with_run if runs else without_run
            bucket[0] += 1
            bucket[1] += int(r["correct"])
        acc = lambda b: f"{100 * b[1] / b[0]:.1f}% of {b[0]}" if b[0] else "-"
        print(
            f"{name}: runs entered at a step boundary {boundary}, inside an equation {inside}; "
            f"accuracy with a run {acc(with_run)}, without {acc(without_run)}"
        )


if __name__ == "__main__":
    main(sys.argv[1])
