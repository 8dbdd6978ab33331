"""What vmapped replicas (seeds, sweep points) become in the compiled train step.

    python -m benchmarks.replica_cost --update docs/performance.md

For the threshold model (one step per call, whole batches) with R = 1 and 8 vmapped replicas and
either convolution (`model.conv_impl` matmul or xla), from the compiled program on this machine's
backend: XLA's cost analysis (FLOPs per replica), and a census of its HLO: dots (and how many
carry the replica axis as a batch dimension: batched matmuls), convolutions (and their
`feature_group_count`: a vmapped convolution becomes a grouped one), while loops (replicas run
one after another), gathers and scatters.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

import numpy as np

from mtljax import config, results
from mtljax.train import experiment
from mtljax.train.epoch import device_split, make_epoch_fns, zero_sums


def census(replicas: int, impl: str) -> dict:
    """The compiled train step's cost and HLO census for `replicas` vmapped replicas."""
    cfg = config.load_stages("experiments/threshold.py", [
        f"seeds={replicas}", "train.replicas=vmap", f"model.conv_impl={impl}", "train.steps_per_call=1",
        "train.microbatch=0", "data.limit=2000"])[0]
    exp = experiment.build_experiment(cfg)
    train_fn, _ = make_epoch_fns(exp)
    idx = np.zeros((replicas, 1, cfg["train"]["batch_size"]), np.int32)
    compiled = train_fn.lower(exp.init_state(), zero_sums(exp.tasks, replicas), device_split(exp.splits["train"]),
                              idx, exp.dropout_rng()).compile()
    text = compiled.as_text()
    ops = collections.Counter(m.group(1) for m in re.finditer(r"= \S+ ([\w-]+)\(", text))
    lines = text.splitlines()
    dots = [s for s in lines if " dot(" in s]
    convs = [s for s in lines if " convolution(" in s]
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    groups = sorted({int(m.group(1)) for s in convs for m in [re.search(r"feature_group_count=(\d+)", s)] if m})
    return {"replicas": replicas, "impl": impl, "gflop_per_replica": cost.get("flops", 0.0) / replicas / 1e9,
            "dots": len(dots), "batched_dots": sum("lhs_batch_dims" in s for s in dots), "convs": len(convs),
            "groups": groups or [1], "while": ops["while"], "gather": ops["gather"], "scatter": ops["scatter"]}


def table(rows: list[dict]) -> str:
    lines = ["| conv | replicas | GFLOP per replica | dots (with a batch dim) | convolutions (feature groups) "
             "| while loops | gathers / scatters |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['impl']} | {r['replicas']} | {r['gflop_per_replica']:.3f} | {r['dots']} ({r['batched_dots']}) "
                     f"| {r['convs']} ({', '.join(map(str, r['groups']))}) | {r['while']} | {r['gather']} / {r['scatter']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", type=Path, help="write the table into this Markdown file (replica-cost markers)")
    args = parser.parse_args()
    text = table([census(r, impl) for impl in ("matmul", "xla") for r in (1, 8)])
    print(text)
    if args.update:
        results.update_readme(args.update, text, "replica-cost")


if __name__ == "__main__":
    main()
