"""The MNIST speedrun, mtljax against the same recipe in PyTorch, side by side on this machine.

    python -m benchmarks.speedrun --update docs/performance.md   # also writes the table there

Each round runs, in fresh processes and alternating which goes first:
- `python -m mtljax.run experiments/speedrun.py` (10 seeds in one program), its cost per seed being
  the process's whole wall time divided by 10, once with an empty compilation cache and once
  rerun with it warm;
- `python -m benchmarks.tables.torch_speedrun` (10 runs one after another in one process), its cost per
  run the median time of a run (as the published notebook times it) and its process wall / 10.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mtljax import results

ROOT = Path(__file__).parent.parent


def mtljax_speedrun(cache: Path) -> dict:
    """One `mtljax.run experiments/speedrun.py` process: wall/seed, compile s, accuracies."""
    with tempfile.TemporaryDirectory() as root:
        cmd = [sys.executable, "-m", "mtljax.run", "experiments/speedrun.py", "--root", root,
               "--compile-cache", str(cache)]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        wall = time.perf_counter() - t
        summary = json.loads(next(Path(root).glob("speedrun/*/summary.json")).read_text())
    accs = [100 * s["digit/accuracy"] for s in summary["test_seeds"]]
    return {"per_seed_s": wall / len(accs), "compile_s": summary["compile_time_s"],
            "mean": statistics.mean(accs), "std": statistics.stdev(accs), "min": min(accs)}


def torch_speedrun() -> dict:
    """One `benchmarks/tables/torch_speedrun.py` process: its JSON result line."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.tables.torch_speedrun"], check=True, capture_output=True,
                         text=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def rounds(n: int) -> list[dict]:
    """`n` rounds of the three measurements, the order alternating between rounds."""
    found = []
    for r in range(n):
        with tempfile.TemporaryDirectory() as cache:
            def ours() -> dict:
                return {"cold": mtljax_speedrun(Path(cache)), "warm": mtljax_speedrun(Path(cache))}

            first, second = (ours, torch_speedrun) if r % 2 == 0 else (torch_speedrun, ours)
            a, b = first(), second()
            found.append({**(a if first is ours else b), "torch": b if first is ours else a})
        print(json.dumps(found[-1]), flush=True)
    return found


def table(found: list[dict]) -> str:
    """The Markdown table of the rounds, with the medians' ratio."""
    lines = ["| round | mtljax, cache cold: s per seed (compile s) | mtljax, cache warm: s per seed (compile s) | "
             "mtljax test accuracy % (10 seeds) | PyTorch: median s per run (process wall / 10) | "
             "PyTorch test accuracy % (10 runs) |", "|---|---|---|---|---|---|"]
    for k, f in enumerate(found, 1):
        cold, warm, torch = f["cold"], f["warm"], f["torch"]
        lines.append(f"| {k} | {cold['per_seed_s']:.2f} ({cold['compile_s']:.1f}) | {warm['per_seed_s']:.2f} "
                     f"({warm['compile_s']:.1f}) | {cold['mean']:.2f} ± {cold['std']:.2f} (min {cold['min']:.2f}) | "
                     f"{torch['median_run_s']:.2f} ({torch['wall_per_run_s']:.2f}) | {torch['accuracy_mean']:.2f} ± "
                     f"{torch['accuracy_std']:.2f} (min {torch['accuracy_min']:.2f}) |")
    med = {k: statistics.median(f[k]["per_seed_s"] for f in found) for k in ("cold", "warm")}
    torch_med = statistics.median(f["torch"]["median_run_s"] for f in found)
    lines += ["", f"Medians: mtljax {med['cold']:.2f} s per seed cold, {med['warm']:.2f} s warm; PyTorch "
                  f"{torch_med:.2f} s per run: {med['cold'] / torch_med:.2f}x cold, {med['warm'] / torch_med:.2f}x "
                  "warm (target: at most 0.5x, at the same or better accuracy)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--update", type=Path, help="the Markdown file to rewrite between its speedrun markers")
    args = parser.parse_args()
    text = table(rounds(args.rounds))
    print(text)
    if args.update:
        results.update_readme(args.update, text, section="speedrun")


if __name__ == "__main__":
    main()
