#!/bin/bash
# Every MTL strategy on MultiMNIST (experiments/multimnist.py's recipe shortened to 12 epochs, seed 0
# only), one after another,
# into checkpoints/strategies/, then the strategies table of docs/strategies.md:
#   bash benchmarks/compare_strategies.sh [strategy ...]   # default: all of them
[[ "${1:-}" == "--help" ]] && { echo "usage: bash benchmarks/compare_strategies.sh [strategy ...]  (default: every strategy)"; exit 0; }
set -euo pipefail
cd "$(dirname "$0")/.."
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    names=($(python -c "from mtljax.mtl import strategies; print(' '.join(strategies.STRATEGIES))"))
fi
for s in "${names[@]}"; do
    python -m mtljax.run experiments/multimnist.py --root checkpoints/strategies --seeds 1 \
        --set "train.epochs=12" "mtl.strategy=\"$s\"" "name=\"multimnist_$s\"" "mtl.diagnose_every=3"
done
python -m mtljax.results --root checkpoints/strategies --update docs/strategies.md --section strategies
