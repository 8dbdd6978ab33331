"""Wall time of a whole `threshold.py` run (10 epochs) against the PyTorch reference doing the same work.

    python -m benchmarks.full_run --update docs/performance.md   # 2 rounds, table written into docs/performance.md

Each round runs, one after another in fresh processes on the otherwise idle machine:
`python -m benchmarks.tables.torch_threshold` (same split, network, Adam, StepLR, batch 64, validation
every epoch, test at the end), then `python -m mtljax.run experiments/threshold.py` with an empty
persistent compilation cache ("cold": everything compiles) and again with the cache that run
filled ("warm": a rerun of the same experiment). The mtljax runs also write checkpoints,
TensorBoard events and plots; PyTorch's does not. Times are process wall clock, start to exit.
This VM's speed drifts by up to 2x for seconds at a time, so every round is reported, and the
ratio uses each kind's median.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mtljax import results

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    """(wall seconds, stdout) of one process."""
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, check=True, capture_output=True, text=True)
    return time.perf_counter() - t, out.stdout


def test_accuracies(stdout: str) -> str:
    """'digit 99.28 / parity 99.66 / threshold 99.49' from a `test: digit 99.28% | ...` line."""
    line = next(line for line in stdout.splitlines() if line.startswith("test:"))
    return " / ".join(f"{name} {value}" for name, value in re.findall(r"(\w+) ([\d.]+)%", line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--update", type=Path, help="the Markdown file to rewrite between its full-run markers")
    args = parser.parse_args()
    rows, walls = [], {"pytorch": [], "cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            wall, out = timed([sys.executable, "-m", "benchmarks.tables.torch_threshold"])
            walls["pytorch"].append(wall)
            rows.append(f"| {r + 1} | PyTorch 2.13 (benchmarks/tables/torch_threshold.py) | {wall:.1f} | {test_accuracies(out)} |")
            print(rows[-1], flush=True)
            cache = Path(tmp) / f"xla{r}"
            for kind in ("cold", "warm"):
                root = Path(tmp) / f"runs{r}{kind}"
                wall, out = timed([sys.executable, "-m", "mtljax.run", "experiments/threshold.py", "--root", str(root),
                                   "--compile-cache", str(cache)])
                summary = json.loads(next(root.glob("threshold/*/summary.json")).read_text())
                walls[kind].append(wall)
                rows.append(f"| {r + 1} | mtljax, compile cache {kind} | {wall:.1f} | {test_accuracies(out)} "
                             f"(mean epoch {summary['mean_epoch_time_s']:.2f} s, compile {summary['compile_time_s']:.1f} s) |")
                print(rows[-1], flush=True)
    median = {k: statistics.median(v) for k, v in walls.items()}
    lines = ["| round | run | wall s | test accuracy % |", "|---|---|---|---|", *rows, "",
             f"Median wall: PyTorch {median['pytorch']:.1f} s, mtljax cold {median['cold']:.1f} s "
             f"({median['cold'] / median['pytorch']:.2f}x), warm {median['warm']:.1f} s "
             f"({median['warm'] / median['pytorch']:.2f}x). Target: at most 0.5x."]
    print(lines[-1])
    if args.update:
        results.update_readme(args.update, "\n".join(lines), section="full-run")


if __name__ == "__main__":
    main()
