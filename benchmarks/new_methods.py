"""One epoch of threshold.py and multimnist.py with 2 seeds for each of the later methods, by name.

    python -m benchmarks.new_methods --root /tmp/new-methods              # runs what is missing, prints the table
    python -m benchmarks.new_methods --root /tmp/new-methods --update docs/strategies.md

Each cell is `python -m mtljax.run experiments/<name>.py --seeds 2 --set train.epochs=1
mtl.strategy=<method>` (PCD's primary task: the experiment's first); a cell whose summary exists
is not run again. A method the experiment's tasks do not allow (Krum and TrimmedMean need three
tasks; MultiMNIST has two) is listed with its one-line error. One epoch says that a method trains,
and what it costs; it ranks nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from mtljax import results

METHODS = ("pcd", "cr_mogm", "krum", "trimmed_mean", "conicgrad", "auto_lambda", "moml", "forum")
EXPERIMENTS = {"threshold": ("digit", "parity", "threshold"), "multimnist": ("left", "right")}


def run_cell(root: Path, experiment: str, method: str) -> dict:
    """The cell's summary (running it if it has none), or {"error": its error line}."""
    name = f"{experiment}_{method}"
    done = sorted((root / name).glob("*/summary.json"))
    if done:
        return json.loads(done[-1].read_text())
    tasks = EXPERIMENTS[experiment]
    sets = ["train.epochs=1", f"mtl.strategy={method}", f"name={name}"]
    if method == "pcd":
        sets.append(f"mtl.pcd.primary={tasks[0]!r}")
    proc = subprocess.run([sys.executable, "-m", "mtljax.run", f"experiments/{experiment}.py", "--seeds", "2",
                           "--root", str(root), "--set", *sets], capture_output=True, text=True)
    if proc.returncode:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(sorted((root / name).glob("*/summary.json"))[-1].read_text())


def cell_text(summary: dict, tasks) -> str:
    if "error" in summary:
        return f"refused: `{summary['error']}`"
    test = summary["test"]
    mean = lambda v: v["mean"] if isinstance(v, dict) else v
    accs = " / ".join(f"{100 * mean(test[f'{t}/accuracy']):.2f}" for t in tasks)
    return f"{accs} ({summary['mean_epoch_time_s']:.0f} s/epoch)"


def table(root: Path) -> str:
    rows = ["One epoch, 2 seeds (`python -m benchmarks.new_methods`): test accuracy % (mean of the seeds), "
            "and the epoch's wall time on this 2-core CPU (both seeds in one program):", "",
            "| method | threshold.py: digit / parity / threshold | multimnist.py: left / right |", "|---|---|---|"]
    for method in METHODS:
        cells = [cell_text(run_cell(root, e, method), tasks) for e, tasks in EXPERIMENTS.items()]
        rows.append(f"| `{method}` | {cells[0]} | {cells[1]} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="where the runs go (and are found again)")
    parser.add_argument("--update", type=Path, help="write the table into this Markdown file (new-methods markers)")
    args = parser.parse_args()
    text = table(args.root)
    print(text)
    if args.update:
        results.update_readme(args.update, text, section="new-methods")


if __name__ == "__main__":
    main()
