"""Seeds vmapped against seeds run one after another, and throughput against device count.

    python benchmarks/scaling.py                      # prints both tables
    python benchmarks/scaling.py --update docs/usage.md   # and writes them into docs/usage.md

Model: the threshold.py network (cnn3, 3 heads) at batch 128, the trainer's own jitted train call
on random data (benchmarks/speed.py's harness), best of five timed windows after compilation.

Seeds: N replicas as one vmapped program (one compile, one dispatch per call for all) against N
single-seed programs run in turn (each compiled; the table charges the sequential way one compile,
as if the compiled program were reused, which flatters it).

Devices: the same call with the batch split over D devices of a `data` mesh. On a CPU the devices
are fakes (`--xla_force_host_platform_device_count`) sharing the same cores, so this shows the
overhead of partitioning there, not a speed-up; on a multi-device machine run it as is.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from mtljax import results

SEEDS = (1, 2, 4, 8)
DEVICES = (1, 2, 4, 8)
BATCH = 128
STEPS = 1000  # Steps per seed in the wall-time columns.


def measure(seeds: int) -> tuple[float, float]:
    """(images/s over all seeds, compile s) of the threshold model with `seeds` replicas."""
    sys.path.insert(0, str(Path(__file__).parent))
    import speed

    name, model_cfg, task_names, _ = speed.MODELS[0]
    return speed.mtljax_step_rate(model_cfg, task_names, BATCH, seeds=seeds)


def in_subprocess(devices: int, seeds: int = 1) -> tuple[float, float]:
    """`measure` in a fresh process that sees `devices` (fake, on CPU) devices."""
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    code = (f"import json, jax, scaling; assert len(jax.devices()) == {devices}; "
            f"print(json.dumps(scaling.measure({seeds})))")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=Path(__file__).parent, check=True,
                         capture_output=True, text=True).stdout
    return tuple(json.loads(out.strip().splitlines()[-1]))


def seed_table() -> str:
    one_rate, one_compile = in_subprocess(1, 1)
    one_wall = STEPS * BATCH / one_rate
    lines = [f"Seeds, threshold model, batch {BATCH}, {STEPS} steps per seed (`python benchmarks/scaling.py`):", "",
             "| seeds | vmapped: img/s | vmapped: compile + train s | sequential: compile + train s | vmapped / sequential |",
             "|---|---|---|---|---|"]
    for n in SEEDS:
        rate, compile_s = (one_rate, one_compile) if n == 1 else in_subprocess(1, n)
        vmapped = compile_s + n * STEPS * BATCH / rate
        sequential = one_compile + n * one_wall
        lines.append(f"| {n} | {rate:,.0f} | {vmapped:.1f} | {sequential:.1f} | {vmapped / sequential:.2f} |")
    return "\n".join(lines)


def device_table() -> str:
    lines = [f"Devices (data parallel, 1 seed, batch {BATCH}, fake CPU devices on the same 2 cores):", "",
             "| devices | img/s | compile s |", "|---|---|---|"]
    for d in DEVICES:
        rate, compile_s = in_subprocess(d, 1)
        lines.append(f"| {d} | {rate:,.0f} | {compile_s:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", type=Path, help="write the tables into this Markdown file (scaling markers)")
    args = parser.parse_args()
    text = seed_table() + "\n\n" + device_table()
    print(text)
    if args.update:
        results.update_readme(args.update, text, section="scaling")


if __name__ == "__main__":
    main()
