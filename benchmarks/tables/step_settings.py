"""The train step's settings against each other on this backend: the figures its `auto` defaults come from.

    python -m benchmarks.tables.step_settings                     # batch 128 and 512
    python -m benchmarks.tables.step_settings --batches 128 2048
    python -m benchmarks.tables.step_settings --batches 512 --models vgg    # speed.py's models named so
    python -m benchmarks.tables.step_settings --experiment experiments/speedrun.py --microbatches 32 64

For the threshold.py network (cnn3, 3 heads), each of speed.py's models whose name contains
--models, or an experiment file's network (at its own batch size unless --batches is given), at
each batch size, every combination of `model.conv_impl` (--impls, default xla and matmul),
`train.steps_per_call` (1, 10) and `train.microbatch` (--microbatches, default 0 and 32; none
with BatchNorm) is built first (benchmarks/speed.py's harness: the trainer's own jitted train
call, random uint8 data resident on the device), then timed in alternating windows, so that all
of them share the machine's speed phases. Prints each one's median images/s, its rate relative
to the fastest, its compile time, and what `auto` resolves to on this backend.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import jax

from mtljax import config, data
from mtljax.train.experiment import resolve_conv_impl, resolve_microbatch, resolve_steps_per_call

from benchmarks.common import MODELS, median_rates, train_bench

IMPLS = ("xla", "matmul")
STEPS = (1, 10)
MICROBATCHES = (0, 32)
WINDOWS = 5


def experiment_entry(path: str) -> tuple[str, dict, list[str], int, int]:
    """(name, model config, tasks, input channels, batch size) of an experiment file's network
    (28×28 images only: speed.py's harness makes its random data so)."""
    cfg = config.load_experiment(path)
    height, width, channels = data.image_shape(cfg["data"])
    if (height, width) != (28, 28):
        print(f"error: {path}: {height}×{width} images; this benchmark times 28×28 networks only", file=sys.stderr)
        raise SystemExit(2)
    return Path(path).stem, config.thaw(cfg["model"]), list(cfg["tasks"]), channels, cfg["train"]["batch_size"]


def auto_settings(batch: int, entry: tuple = MODELS[0]) -> tuple[str, int, int]:
    """(conv_impl, steps_per_call, microbatch) that `auto` resolves to here for an entry of
    MODELS (or of `experiment_entry`)."""
    _, model_cfg, task_names, _ = entry
    cfg = config.resolve({"tasks": task_names, "model": model_cfg, "train": {"batch_size": batch}})
    return resolve_conv_impl(cfg), resolve_steps_per_call(cfg), resolve_microbatch(cfg)


def settings_table(batch: int, entry: tuple = MODELS[0], microbatches: tuple[int, ...] = MICROBATCHES,
                   impls: tuple[str, ...] = IMPLS) -> str:
    """The Markdown table of every setting at `batch` for an entry of speed.py's MODELS (or of
    `experiment_entry`), fastest first: `microbatches` × `impls` × steps per call 1 and 10."""
    _, model_cfg, task_names, channels = entry
    benches = {(impl, k, mb): train_bench({**model_cfg, "conv_impl": impl}, task_names, batch, mb, k,
                                          channels=channels)
               for impl, k, mb in itertools.product(impls, STEPS, microbatches)
               if mb < batch and not (mb and model_cfg.get("batchnorm"))}  # BN: no micro-batches
    rates = median_rates(benches, WINDOWS)
    best = max(rates.values())
    auto = auto_settings(batch, entry)
    lines = [f"batch {batch} (`auto` here: conv_impl={auto[0]}, steps_per_call={auto[1]}, microbatch={auto[2]}):", "",
             "| conv_impl | steps/call | microbatch | img/s | vs fastest | compile s |", "|---|---|---|---|---|---|"]
    for key in sorted(rates, key=rates.get, reverse=True):
        mark = " (auto)" if key == auto else ""
        lines.append(f"| {key[0]}{mark} | {key[1]} | {key[2]} | {rates[key]:,.0f} | {rates[key] / best:.2f} | "
                     f"{benches[key].compile_s:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", help="batch sizes (default: 128 512, or the experiment's)")
    parser.add_argument("--models", default="threshold", help="the models whose name contains this text")
    parser.add_argument("--experiment", help="an experiment file: time its network instead of speed.py's models")
    parser.add_argument("--microbatches", type=int, nargs="+", default=list(MICROBATCHES))
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS, help="conv_impl values to time")
    args = parser.parse_args()
    if args.experiment:
        *entry, batch = experiment_entry(args.experiment)
        entries, batches = [tuple(entry)], args.batches or [batch]
    else:
        entries, batches = [m for m in MODELS if args.models in m[0]], args.batches or [128, 512]
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}; "
          f"median of {WINDOWS} alternating windows", flush=True)
    for entry in entries:
        for batch in batches:
            print(f"\n{entry[0]}, " + settings_table(batch, entry, tuple(args.microbatches),
                                                              tuple(args.impls)), flush=True)


if __name__ == "__main__":
    main()
