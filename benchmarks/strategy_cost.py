"""What each MTL strategy costs per train step, against static weights (one plain backward pass).

    python -m benchmarks.strategy_cost                      # prints the table
    python -m benchmarks.strategy_cost --update docs/strategies.md   # and writes it into docs/strategies.md
    python -m benchmarks.strategy_cost --architectures --update docs/architectures.md   # the architectures

Model: the threshold.py network (cnn3, three tasks) at batch 128, the trainer's own jitted train
call on random data (benchmarks/speed.py's harness), best of five timed windows after compilation.
Loss weightings differentiate one scalar (the cost of static weights); MGDA-UB adds a forward pass
and the heads' per-task backward passes; gradient aggregators need every task's gradient of the
shared parameters (one pullback per task) plus their small T×T solve; stateful ones carry T×P
arrays; MoDo and SDMGrad pull back each task's loss on three parts of the batch; FAMO adds a
forward pass after the update.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path


from benchmarks import common as speed

from mtljax import models, results
from mtljax.mtl import strategies  # noqa: E402

BATCH = 128


def side_by_side(bench, reference, rounds: int = 7) -> tuple[float, float]:
    """(median images/s of `bench`, median ratio of its step time to `reference`'s), from windows
    of the two taken in turn: this VM's speed drifts by up to 2x within minutes, so only ratios
    of neighbouring windows hold."""
    calls = max(2, 4096 // bench.images_per_call)
    bench.run(calls)  # Warm-up.
    pairs = [(reference.run(calls), bench.run(calls)) for _ in range(rounds)]
    return statistics.median(r for _, r in pairs), statistics.median(ref / r for ref, r in pairs)


def table() -> str:
    """One row per strategy (and per aggregator with `rep_grad`), each beside static weights."""
    _, model_cfg, task_names, _ = speed.MODELS[0]
    rows = [f"Per-step cost of each strategy, threshold model (3 tasks), batch {BATCH} "
            "(`python -m benchmarks.strategy_cost`); `+ rep_grad`: the aggregator on the shared "
            "representation's task gradients (`mtl.rep_grad`); step time against static weights' in "
            "alternating windows (median of 7 pairs):", "",
            "| strategy | kind | img/s | step time vs static | compile s |", "|---|---|---|---|---|"]
    static = speed.train_bench(model_cfg, task_names, BATCH, mtl={"strategy": "static"})
    static.run(max(2, 4096 // static.images_per_call))  # Warm-up.
    for name in strategies.STRATEGIES:
        strategy = strategies.get(name)
        # MoDo and SDMGrad compare independent parts of the batch: not on the representation.
        for rep_grad in (False, True) if strategy.kind == "gradient" and strategy.samples == 1 else (False,):
            bench = speed.train_bench(model_cfg, task_names, BATCH, mtl={"strategy": name, "rep_grad": rep_grad})
            rate, ratio = side_by_side(bench, static)
            label = f"{name} + rep_grad" if rep_grad else name
            rows.append(f"| {label} | {strategy.kind} | {rate:,.0f} | {ratio:.2f}x | {bench.compile_s:.1f} |")
    return "\n".join(rows)


def architecture_table() -> str:
    """Each architecture's train step beside hard sharing's: the threshold model's backbone and
    tasks, static weights and UPGrad (a gradient aggregator: every task's backward pass)."""
    _, model_cfg, task_names, _ = speed.MODELS[0]
    heads = {t: 10 if t == "digit" else 2 for t in task_names}
    rows = [f"Per-step cost of each architecture around the threshold model's CNN (3 tasks), batch {BATCH} "
            "(`python -m benchmarks.strategy_cost --architectures`), static weights and UPGrad:", "",
            "| architecture | parameters | img/s static | step time vs hard | img/s upgrad | upgrad vs its static "
            "| compile s (static) |", "|---|---|---|---|---|---|---|"]
    hard = None
    for arch in models.ARCHITECTURES:
        cfg = {**model_cfg, "architecture": arch}
        count = models.param_count(models.build_model(models.default_config(**cfg), heads), (28, 28, 1))
        rate, compile_s = speed.mtljax_step_rate(cfg, task_names, BATCH, mtl={"strategy": "static"})
        upgrad, _ = speed.mtljax_step_rate(cfg, task_names, BATCH, mtl={"strategy": "upgrad"})
        hard = hard or rate
        rows.append(f"| {arch} | {count:,} | {rate:,.0f} | {hard / rate:.2f}x | {upgrad:,.0f} | {rate / upgrad:.2f}x "
                    f"| {compile_s:.1f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", type=Path, help="write the table into this Markdown file (strategy-cost "
                        "markers; architecture-cost markers with --architectures)")
    parser.add_argument("--architectures", action="store_true", help="the architectures' table instead")
    args = parser.parse_args()
    text = architecture_table() if args.architectures else table()
    print(text)
    if args.update:
        results.update_readme(args.update, text, section="architecture-cost" if args.architectures else "strategy-cost")


if __name__ == "__main__":
    main()
