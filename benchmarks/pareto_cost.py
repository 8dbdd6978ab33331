"""What a Pareto front costs: one-model methods against one plain run of the same network, and a
per-ray method's whole front (rays × seeds) as one compiled program.

    python -m benchmarks.pareto_cost                 # prints both tables
    python -m benchmarks.pareto_cost --update docs/pareto.md   # and writes them into docs/pareto.md

1. experiments/pareto_multimnist.py for one epoch, one seed: the plain run (linear scalarization
   at the centre ray, `pareto.rays=0`) and COSMOS, PHN-LS and PML (one model for every ray), in
   turn, `--rounds` times; the table gives each one's median epoch time over the plain run's of
   the same round (runs side by side, so the machine's drift of up to 2× cancels in the ratio).
2. The same network's whole front, `--rays` rays × `--seeds` seeds of linear scalarization as one
   run (one compiled program), against one replica, both on `--limit` images of each split: the
   seconds per replica-epoch, and the compile time of each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

EXPERIMENT = "experiments/pareto_multimnist.py"
ONE_MODEL = {"plain run": ["pareto.rays=0"],
             "COSMOS": ["pareto.rays=0", "pareto.condition=input", "mtl.strategy=cosmos"],
             "PHN-LS": ["pareto.rays=0", "pareto.condition=hyper"],
             "PML": ["pareto.rays=0", "pareto.condition=simplex"]}


def train(root: Path, name: str, overrides: list[str]) -> dict:
    """Runs the experiment with `overrides` into `root`; returns its summary."""
    cmd = [sys.executable, "-m", "mtljax.run", EXPERIMENT, "--root", str(root), "--set", f"name={name}", *overrides]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dir = sorted((root / name).iterdir())[-1]
    return json.loads((run_dir / "summary.json").read_text())


def one_model_table(root: Path, rounds: int) -> str:
    """Epoch time of each one-model method over the plain run's, per round, side by side."""
    times = {label: [] for label in ONE_MODEL}
    for r in range(rounds):
        for label, overrides in ONE_MODEL.items():
            summary = train(root, f"cost_{r}_{label.replace(' ', '_')}", ["train.epochs=1", "seeds=1", *overrides])
            times[label].append(summary["mean_epoch_time_s"])
    plain = times["plain run"]
    lines = ["| run | epoch time (median) | over the plain run's (median of rounds) |", "|---|---|---|"]
    for label, values in times.items():
        ratio = statistics.median(v / p for v, p in zip(values, plain))
        lines.append(f"| {label} | {statistics.median(values):.1f} s | {ratio:.2f}× |")
    return "\n".join(lines) + f"\n\n{rounds} rounds of one epoch each (108,000 images, batch 256), one seed."


def front_table(root: Path, rays: int, seeds: int, limit: int) -> str:
    """One replica against the whole front of `rays` × `seeds` replicas, as one run each."""
    common = ["train.epochs=1", f"data.limit={limit}", "mtl.strategy=static"]
    one = train(root, "front_1", [*common, "seeds=1", "pareto.rays=0"])
    whole = train(root, "front_all", [*common, f"seeds={seeds}", f"pareto.rays={rays}"])
    n = rays * seeds
    lines = ["| run | replicas | compile | epoch | per replica-epoch |", "|---|---|---|---|---|"]
    for label, summary, count in (("one replica", one, 1), (f"{rays} rays × {seeds} seeds", whole, n)):
        epoch = summary["mean_epoch_time_s"]
        lines.append(f"| {label} | {count} | {summary['compile_time_s']:.1f} s | {epoch:.1f} s | {epoch / count:.3f} s |")
    return "\n".join(lines) + f"\n\nOne epoch of {limit} training images (`data.limit={limit}`), batch 256."


def update(path: Path, name: str, text: str) -> None:
    """Puts `text` between the `<!-- pareto_cost:NAME:start/end -->` markers of `path`."""
    start, end = f"<!-- pareto_cost:{name}:start -->", f"<!-- pareto_cost:{name}:end -->"
    page = path.read_text()
    if start not in page or end not in page:
        raise SystemExit(f"error: {path} has no {start} ... {end} markers")
    path.write_text(page[:page.index(start)] + f"{start}\n{text}\n" + page[page.index(end):])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pareto_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the one-model runs (default 2)")
    parser.add_argument("--rays", type=int, default=25)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=2048, help="images per split of the front's runs")
    parser.add_argument("--update", type=Path, metavar="FILE.md", help="write the tables between its markers")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pareto-cost-") as tmp:
        tables = {"one_model": one_model_table(Path(tmp), args.rounds),
                  "front": front_table(Path(tmp), args.rays, args.seeds, args.limit)}
    for name, text in tables.items():
        print(text + "\n")
        if args.update:
            update(args.update, name, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
