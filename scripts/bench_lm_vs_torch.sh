#!/usr/bin/env bash
# Runs bench_lm and the PyTorch baseline on the same configs and shapes; one JSON line per run.
#   PY=~/pyref/bin/python scripts/bench_lm_vs_torch.sh > bench.jsonl
set -euo pipefail
PY=${PY:-python3}
cargo build --release --example bench_lm >&2
run() { # config batch seq steps mode
  ./target/release/examples/bench_lm --config "$1" --batch "$2" --seq "$3" --steps "$4" --mode "$5"
  "$PY" scripts/bench_torch.py --config "$1" --batch "$2" --seq "$3" --steps "$4" --mode "$5" 2>/dev/null | grep '"bench"'
}
run configs/bench/tiny.json 8 128 10 forward
run configs/bench/tiny.json 8 128 10 train
run configs/bench/gpt2-small.json 4 128 5 forward
run configs/bench/gpt2-small.json 4 128 3 train
gen() { # config batch prompt new steps
  ./target/release/examples/bench_lm --config "$1" --mode generate --batch "$2" --prompt-len "$3" --new-tokens "$4" --steps "$5" --warmup 1
  "$PY" scripts/bench_torch.py --config "$1" --mode generate --batch "$2" --prompt-len "$3" --new-tokens "$4" --steps "$5" --warmup 1 2>/dev/null | grep '"bench"'
}
gen configs/bench/tiny.json 1 16 64 5
gen configs/bench/tiny.json 8 16 64 3
gen configs/bench/gpt2-small.json 1 16 32 2
