#!/usr/bin/env bash
# Runs the given experiments one after another (all of experiments/*.py when none are given),
# then regenerates the README's results table. Usage: bash benchmarks/run_experiments.sh [name ...]
set -euo pipefail
cd "$(dirname "$0")/.."
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in experiments/*.py; do n=$(basename "$f" .py); [ "$n" = "__init__" ] || names+=("$n"); done
fi
for n in "${names[@]}"; do
  echo "=== $n"
  python -m mtljax.run "experiments/$n.py" 2>&1 | tr "\r" "\n" | grep -av "it/s" || echo "!!! $n failed"
done
python -m mtljax.results --update README.md
