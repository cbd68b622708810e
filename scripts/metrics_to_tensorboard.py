#!/usr/bin/env python3
"""Converts a run's `metrics.jsonl` into a TensorBoard event file, so `tensorboard --logdir` shows it.

Every training run of the workspace writes `metrics.jsonl` in its output directory: one JSON object
per line, each with its optimizer `step` (1-based), per-update values (`loss`, `grad_norm`,
`lr/<group>`, the method's terms such as `reward/mean`, `tokens_per_s`, `elapsed_s`) and evaluation
lines (`valid/...`). This script writes each numeric key of each line as a TensorBoard scalar of that
name at that step; the wall time is the file's first write time plus `elapsed_s` where a line has it.

    pip install tensorboard            # a development tool, not needed by the workspace
    python scripts/metrics_to_tensorboard.py runs/codi-tiny-cpu runs/grpo-tiny-cpu --logdir runs/tb
    tensorboard --logdir runs/tb

Each run becomes a sub-directory of `--logdir` named after the run directory (default `--logdir`:
`<run>/tensorboard` for each run). Converting again replaces the earlier event file. It prints the
number of scalars written per run.
"""

import argparse
import json
import math
import os
import shutil
import sys

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter


def scalars(line):
    """The (tag, value) pairs of one metrics line: its finite numbers other than `step`/`epoch`."""
    for key, value in line.items():
        if key in ("step", "epoch") or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)) and math.isfinite(value):
            yield key, float(value)


def convert(run_dir, out_dir):
    """Writes `run_dir/metrics.jsonl` as events under `out_dir`; returns the scalar count."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        raise SystemExit(f"{path}: no such file (is {run_dir} a run's output directory?)")
    start = os.path.getmtime(path)
    lines = []
    with open(path, encoding="utf-8") as f:
        for number, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{number}: not JSON ({e})")
    if lines and "elapsed_s" in lines[-1]:
        start -= lines[-1]["elapsed_s"]
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    writer = EventFileWriter(out_dir)
    count = 0
    for number, line in enumerate(lines, 1):
        if "step" not in line:
            raise SystemExit(f"{path}:{number}: no `step`")
        values = [summary_pb2.Summary.Value(tag=tag, simple_value=v) for tag, v in scalars(line)]
        if not values:
            continue
        wall = start + line.get("elapsed_s", 0.0)
        writer.add_event(
            event_pb2.Event(
                wall_time=wall, step=int(line["step"]), summary=summary_pb2.Summary(value=values)
            )
        )
        count += len(values)
    writer.close()
    return count


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run output directories holding metrics.jsonl")
    parser.add_argument("--logdir", help="one sub-directory per run here (default: <run>/tensorboard)")
    args = parser.parse_args()
    for run in args.runs:
        name = os.path.basename(os.path.normpath(run))
        out = os.path.join(args.logdir, name) if args.logdir else os.path.join(run, "tensorboard")
        count = convert(run, out)
        print(f"{run}: {count} scalars -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
