#!/usr/bin/env bash
# Choose sampling settings by measurement: `host-trainer eval` over a grid of
# temperature × top-k × top-p, every setting on the same 24 seeds, compared
# with the validation split's chorales (never the test split, which judges
# the choice, nor the training pieces). Prints one row per setting, best
# mean overlap area first. VOICES and REPEAT are eval's --voices (free, train
# or a number) and --repeat (none, train or a number of bars).
#   tools/sampling-sweep.sh MODEL.safetensors [TEMPERATURES] [TOP_KS] [TOP_PS] [VOICES] [REPEAT]
#   tools/sampling-sweep.sh firmware/model/student.safetensors "0.6 0.8 1.0" "20 50 0" "0.9 0.95 1.0" train train
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: tools/sampling-sweep.sh MODEL [TEMPERATURES] [TOP_KS] [TOP_PS] [VOICES] [REPEAT]}
temperatures=${2:-0.6 0.7 0.8 0.9 1.0}
top_ks=${3:-20 50 0}
top_ps=${4:-0.9 0.95 1.0}
voices=${5:-free}
repeat=${6:-none}
cargo build --release -q -p host-trainer
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for t in $temperatures; do
  for k in $top_ks; do
    for p in $top_ps; do
      target/release/host-trainer eval --model "$model" --reference valid \
        --temperature "$t" --top-k "$k" --top-p "$p" --voices "$voices" --repeat "$repeat" --json --quiet --out "$out" |
        python3 -c '
import json, sys
d = json.load(sys.stdin)
o = d["overlap"]
rep = {f["feature"]: f["overlap"] for f in o["features"]}
t, k, p = sys.argv[1:4]
print("%.3f  temperature %4s  top-k %3s  top-p %4s  4-gram overlap %.2f  polyphony overlap %.2f"
      % (o["mean"], t, k, p, rep["pitch 4-gram repetition"], rep["polyphony"]))
' "$t" "$k" "$p"
    done
  done
done | sort -rn
