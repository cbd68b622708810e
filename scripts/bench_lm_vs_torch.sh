#!/usr/bin/env bash
# Runs bench_lm and the PyTorch baseline on the same configs and shapes, the two sides in turn
# (ours, theirs, ours, theirs, ...) REPEAT times per row; one JSON line per run on stdout, then the
# table of medians and ratios (latent-core / PyTorch, median of the pairwise ratios) on stderr.
#   PY=~/pyref/bin/python scripts/bench_lm_vs_torch.sh > bench.jsonl
#   REPEAT=5 ROWS=generate PY=... scripts/bench_lm_vs_torch.sh > bench.jsonl    # only the decoding rows
#   BIN=/path/to/an/older/bench_lm PY=... scripts/bench_lm_vs_torch.sh          # a saved build (before/after)
set -euo pipefail
PY=${PY:-python3}
REPEAT=${REPEAT:-3}
ROWS=${ROWS:-all} # all | train | generate
if [ -z "${BIN:-}" ]; then
  cargo build --release --example bench_lm >&2
  BIN=${CARGO_TARGET_DIR:-target}/release/examples/bench_lm
fi
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
pair() { # arguments shared by both sides
  for _ in $(seq "$REPEAT"); do
    "$BIN" "$@" | tee -a "$OUT"
    "$PY" scripts/bench_torch.py "$@" 2>/dev/null | grep '"bench"' | tee -a "$OUT"
  done
}
if [ "$ROWS" != generate ]; then
  pair --config configs/bench/tiny.json --batch 8 --seq 128 --steps 10 --mode forward
  pair --config configs/bench/tiny.json --batch 8 --seq 128 --steps 10 --mode train
  pair --config configs/bench/gpt2-small.json --batch 4 --seq 128 --steps 5 --mode forward
  pair --config configs/bench/gpt2-small.json --batch 4 --seq 128 --steps 3 --mode train
fi
if [ "$ROWS" != train ]; then
  g="--mode generate --prompt-len 16 --warmup 1"
  pair --config configs/bench/tiny.json $g --batch 1 --new-tokens 64 --steps 5
  pair --config configs/bench/tiny.json $g --batch 8 --new-tokens 64 --steps 3
  pair --config configs/bench/gpt2-small.json $g --batch 1 --new-tokens 32 --steps 2
fi
python3 scripts/bench_ratios.py "$OUT" >&2
