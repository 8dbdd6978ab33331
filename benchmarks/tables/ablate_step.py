"""What each CPU speed measure of the train step buys: the step with all of them, and with one off.

    python -m benchmarks.tables.ablate_step --update docs/performance.md   # batch 128, threshold model and marlon-sb CNN

Variants, each built in this one process and timed in alternating windows (this VM's speed drifts
by up to 2x between minutes, so separate runs cannot be compared): "all" (the default path),
"no fused first layer" (`ops.FUSE_MAX_CHANNELS = 0`: conv, ReLU and pool apart), "no crop"
(`ops.crop_for_pool` the identity: the odd conv row/column the pool drops is computed), and
"size-1 seed axis vmapped" (`parallel.over_replicas` replaced by `jax.vmap`). Prints the best and
median window of each, in images/s.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import jax

from mtljax import models, results
from mtljax.models import ops
from mtljax.train import parallel

from benchmarks.common import MODELS, train_bench

VARIANTS = {
    "all": {},
    "no fused first layer": {"FUSE_MAX_CHANNELS": 0},
    "no crop": {"crop_for_pool": lambda x: x},
    "size-1 seed axis vmapped": {"over_replicas": lambda fn, in_axes, mode: jax.vmap(fn, in_axes=in_axes)},
}


def timer(model_cfg: dict, task_names: list[str], batch: int):
    """A function timing one window of 8 train calls (10 steps each) of a freshly compiled step."""
    bench = train_bench(model_cfg, task_names, batch)
    bench.run(2)  # Warm-up.
    return lambda: bench.run(8)


def build_variant(changes: dict, model_cfg: dict, task_names: list[str], batch: int):
    """`timer` with `changes` applied to ops/parallel while the step is traced and compiled."""
    saved = {}
    for name, value in changes.items():
        module = parallel if name == "over_replicas" else ops
        saved[name] = (module, getattr(module, name))
        setattr(module, name, value)
    try:
        return timer(model_cfg, task_names, batch)
    finally:
        for name, (module, value) in saved.items():
            setattr(module, name, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--update", type=Path, help="the Markdown file to rewrite between its ablation markers")
    args = parser.parse_args()
    lines = [f"batch {args.batch}, {args.rounds} alternating windows of 8 calls × 10 steps per variant", "",
             "| model | variant | best img/s | median img/s |", "|---|---|---|---|"]
    print("\n".join(lines))
    for name, overrides, task_names, _ in MODELS[:2]:  # The two cnn3 models: the ones the measures apply to.
        model_cfg = models.default_config(**overrides)
        windows = {v: build_variant(changes, model_cfg, task_names, args.batch) for v, changes in VARIANTS.items()}
        rates = {v: [] for v in windows}
        for _ in range(args.rounds):
            for v, window in windows.items():
                rates[v].append(window())
        for v, r in rates.items():
            lines.append(f"| {name} | {v} | {max(r):.0f} | {statistics.median(r):.0f} |")
            print(lines[-1], flush=True)
    if args.update:
        results.update_readme(args.update, "\n".join(lines), section="ablation")


if __name__ == "__main__":
    main()
