#!/usr/bin/env bash
# Runs the given experiments one after another (all of experiments/ and experiments/ablations/
# when none are given), then regenerates the results tables of docs/results.md and the README. Usage: bash benchmarks/run_experiments.sh [name ...]
[[ "${1:-}" == "--help" ]] && { echo "usage: bash benchmarks/run_experiments.sh [name ...]  (default: every experiment file)"; exit 0; }
set -euo pipefail
cd "$(dirname "$0")/.."
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in experiments/*.py experiments/ablations/*.py; do
    n=${f#experiments/}; n=${n%.py}; [ "$(basename "$n")" = "__init__" ] || names+=("$n")
  done
fi
for n in "${names[@]}"; do
  echo "=== $n"
  python -m mtljax.run "experiments/$n.py" 2>&1 | tr "\r" "\n" | grep -av "it/s" || echo "!!! $n failed"
done
python -m mtljax.results --update docs/results.md
python -m mtljax.results --update README.md --canonical
