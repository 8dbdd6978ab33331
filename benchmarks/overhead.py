"""What a run costs beyond its training: process wall time against the training loop's, per phase.

    python -m benchmarks.overhead --update docs/performance.md
    python -m benchmarks.overhead --baseline /path/to/older/checkout   # that code beside this one

For each experiment (the speedrun and `threshold.py`) it runs `python -m mtljax.run` in fresh
processes: once with an empty compilation cache (cold), then `--rounds` times with it warm,
alternating with the baseline checkout when one is given (its `mtljax` first on the path). Training
is the sum of the epochs' `epoch_time_s` (metrics.jsonl), measured the same way by every version;
"beyond" is process wall − training − compilation. The phases come from `summary.json`'s `timing`
(versions without it show none).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mtljax import results

ROOT = Path(__file__).parent.parent
EXPERIMENTS = ("experiments/speedrun.py", "experiments/threshold.py")


def one_run(experiment: str, cache: Path, code: Path, extra_path: str = "") -> dict:
    """One `mtljax.run` process of `experiment` with the code of checkout `code`: its wall time,
    training, compilation and phases."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(code), extra_path) if p)}
    with tempfile.TemporaryDirectory() as root:
        cmd = [sys.executable, "-m", "mtljax.run", str(ROOT / experiment), "--root", root, "--compile-cache", str(cache)]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=code, env=env)
        wall = time.perf_counter() - t
        run_dir = next(Path(root).glob("*/*/summary.json")).parent
        summary = json.loads((run_dir / "summary.json").read_text())
        training = sum(json.loads(line)["epoch_time_s"] for line in (run_dir / "metrics.jsonl").read_text().splitlines())
    return {"wall": wall, "training": training, "compile": summary["compile_time_s"],
            "beyond": wall - training - summary["compile_time_s"], "test": summary["test"],
            "phases": summary.get("timing", {}).get("phases", {})}


def measure(experiment: str, rounds: int, versions: dict[str, tuple[Path, str]]) -> dict[str, list[dict]]:
    """Per version: its cold run, then `rounds` warm runs, the versions alternating in each round."""
    found: dict[str, list[dict]] = {name: [] for name in versions}
    caches = {name: Path(tempfile.mkdtemp(prefix="mtljax-overhead-")) for name in versions}
    for r in range(rounds + 1):
        order = list(versions) if r % 2 == 0 else list(versions)[::-1]
        for name in order:
            code, extra = versions[name]
            found[name].append(one_run(experiment, caches[name], code, extra))
    return found


def phase_line(runs: list[dict]) -> str:
    """The warm runs' median phases above 0.05 s, largest first."""
    names = {k for r in runs for k in r["phases"]}
    med = {k: statistics.median(r["phases"].get(k, 0.0) for r in runs) for k in names}
    return ", ".join(f"{k} {v:.2f}" for k, v in sorted(med.items(), key=lambda kv: -kv[1]) if v >= 0.05) or "-"


def table(found: dict[str, dict[str, list[dict]]]) -> str:
    """Markdown: per experiment and version, the cold run and the warm runs' medians."""
    lines = ["| experiment | code | cold: wall s (beyond training + compile) | warm: wall s | training s | compile s "
             "| **beyond training + compile s** | warm phases, median s |", "|---|---|---|---|---|---|---|---|"]
    for experiment, versions in found.items():
        for name, runs in versions.items():
            cold, warm = runs[0], runs[1:]
            med = lambda key: statistics.median(r[key] for r in warm)
            lines.append(f"| {Path(experiment).stem} | {name} | {cold['wall']:.1f} ({cold['beyond']:.1f}) | "
                         f"{med('wall'):.1f} | {med('training'):.1f} | {med('compile'):.1f} | **{med('beyond'):.1f}** | "
                         f"{phase_line(warm)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="warm runs per version")
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS))
    parser.add_argument("--baseline", type=Path, help="a checkout of other mtljax code, run beside this one")
    parser.add_argument("--baseline-path", default="", help="more of the baseline's PYTHONPATH (its own packages)")
    parser.add_argument("--update", type=Path, help="write the table into this Markdown file (overhead markers)")
    args = parser.parse_args()
    versions = {"this": (ROOT, "")}
    if args.baseline:
        versions["baseline"] = (args.baseline.absolute(), args.baseline_path)
    found = {e: measure(e, args.rounds, versions) for e in args.experiments}
    for e, v in found.items():  # Same results whichever version: the speed work changes no number.
        tests = [r["test"] for runs in v.values() for r in runs]
        print(f"{e}: test metrics identical in every run: {all(t == tests[0] for t in tests)}")
    text = table(found)
    print(text)
    if args.update:
        results.update_readme(args.update, text, "overhead")


if __name__ == "__main__":
    main()
