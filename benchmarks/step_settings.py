"""The train step's settings against each other on this backend: the figures its `auto` defaults come from.

    python benchmarks/step_settings.py                     # batch 128 and 512
    python benchmarks/step_settings.py --batches 128 2048
    python benchmarks/step_settings.py --batches 512 --models vgg    # speed.py's models named so

For the threshold.py network (cnn3, 3 heads), or each of speed.py's models whose name contains
--models, at each batch size, every combination of `model.conv_impl` (xla, matmul),
`train.steps_per_call` (1, 10) and `train.microbatch` (0, 32; none with BatchNorm) is
built first (benchmarks/speed.py's harness: the trainer's own jitted train call, random uint8
data resident on the device), then timed in alternating windows, so that all of them share the
machine's speed phases. Prints each one's median images/s, its rate relative to the fastest, its
compile time, and what `auto` resolves to on this backend.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import jax

from mtljax import config
from mtljax.train.experiment import resolve_conv_impl, resolve_microbatch, resolve_steps_per_call

sys.path.insert(0, str(Path(__file__).parent))
from speed import MODELS, median_rates, train_bench  # noqa: E402

IMPLS = ("xla", "matmul")
STEPS = (1, 10)
MICROBATCHES = (0, 32)
WINDOWS = 5


def auto_settings(batch: int, entry: tuple = MODELS[0]) -> tuple[str, int, int]:
    """(conv_impl, steps_per_call, microbatch) that `auto` resolves to here for one of MODELS."""
    _, model_cfg, task_names, _ = entry
    cfg = config.resolve({"tasks": task_names, "model": model_cfg, "train": {"batch_size": batch}})
    return resolve_conv_impl(cfg), resolve_steps_per_call(cfg), resolve_microbatch(cfg)


def settings_table(batch: int, entry: tuple = MODELS[0]) -> str:
    """The Markdown table of every setting at `batch` for one of speed.py's MODELS, fastest first."""
    _, model_cfg, task_names, channels = entry
    benches = {(impl, k, mb): train_bench({**model_cfg, "conv_impl": impl}, task_names, batch, mb, k,
                                          channels=channels)
               for impl, k, mb in itertools.product(IMPLS, STEPS, MICROBATCHES)
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
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--models", default="threshold", help="the models whose name contains this text")
    args = parser.parse_args()
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}; "
          f"median of {WINDOWS} alternating windows", flush=True)
    for entry in [m for m in MODELS if args.models in m[0]]:
        for batch in args.batches:
            print(f"\n{entry[0]}, " + settings_table(batch, entry), flush=True)


if __name__ == "__main__":
    main()
