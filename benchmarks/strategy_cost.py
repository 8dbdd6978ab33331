"""What each MTL strategy costs per train step, against static weights (one plain backward pass).

    python benchmarks/strategy_cost.py                      # prints the table
    python benchmarks/strategy_cost.py --update docs/strategies.md   # and writes it into docs/strategies.md

Model: the threshold.py network (cnn3, three tasks) at batch 128, the trainer's own jitted train
call on random data (benchmarks/speed.py's harness), best of five timed windows after compilation.
Loss weightings differentiate one scalar (the cost of static weights); MGDA-UB adds a forward pass
and the heads' per-task backward passes; gradient aggregators need every task's gradient of the
shared parameters (`jax.jacrev`, T backward passes) plus their small T×T solve.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import speed  # noqa: E402

from mtljax import results
from mtljax.mtl import strategies  # noqa: E402

BATCH = 128


def table() -> str:
    _, model_cfg, task_names, _ = speed.MODELS[0]
    rows = [f"Per-step cost of each strategy, threshold model (3 tasks), batch {BATCH} "
            "(`python benchmarks/strategy_cost.py`):", "",
            "| strategy | kind | img/s | step time vs static | compile s |", "|---|---|---|---|---|"]
    for name, strategy in strategies.STRATEGIES.items():
        rate, compile_s = speed.mtljax_step_rate(model_cfg, task_names, BATCH, mtl={"strategy": name})
        rows.append((name, strategy.kind, rate, compile_s))
    static = next(r for r in rows[4:] if r[0] == "static")[2]
    lines = rows[:4] + [f"| {n} | {k} | {r:,.0f} | {static / r:.2f}x | {c:.1f} |" for n, k, r, c in rows[4:]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", type=Path, help="write the table into this Markdown file (strategy-cost markers)")
    args = parser.parse_args()
    text = table()
    print(text)
    if args.update:
        results.update_readme(args.update, text, section="strategy-cost")


if __name__ == "__main__":
    main()
