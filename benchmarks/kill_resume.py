"""SIGKILL a short run at random moments, resume it each time, and compare the end bit for bit
with an uninterrupted run of the same config on the same machine.

    python -m benchmarks.kill_resume --kills 20      # prints the figure docs/reliability.md reports

The run is small (synthetic digits, 3 epochs, a few steps per jitted call) so that kills land in
every phase: start-up, compilation, training, evaluation, checkpoint writing, plotting. "Bit for
bit" means: the final latest checkpoint's parameters and optimizer state are equal array by array,
metrics.jsonl is equal line by line (timings aside) with no epoch missing or repeated, and the
test metrics in summary.json are equal.
"""

from __future__ import annotations

import argparse
import json
import os
import pprint
import random
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

CONFIG = {
    "name": "killme",
    "tasks": ["digit", "parity"],
    "data": {"val_size": 100},
    "model": {"features": [4, 8, 8], "dense": 16, "dropout": 0.2},
    "train": {"epochs": 3, "batch_size": 50, "eval_batch_size": 100, "steps_per_call": 2},
}


def write_setup(workdir: Path) -> Path:
    """Synthetic MNIST in `workdir/data` and the experiment file; returns the file."""
    from mtljax.data import mnist

    mnist.write_cache(workdir / "data", mnist.synthetic(), source="synthetic")
    cfg = {**CONFIG, "data": {**CONFIG["data"], "dir": str(workdir / "data")}}
    path = workdir / "killme.py"
    path.write_text("CONFIG = " + pprint.pformat(cfg) + "\n")
    return path


def _command(path: Path, root: Path, resume: bool) -> list[str]:
    return [sys.executable, "-m", "mtljax.run", str(path), "--root", str(root), *(["--resume"] if resume else [])]


def _env() -> dict:
    return {**os.environ, "JAX_PLATFORMS": "cpu"}


def run_to_end(path: Path, root: Path) -> Path:
    subprocess.run(_command(path, root, False), check=True, capture_output=True, env=_env())
    return next((root / "killme").iterdir())


def killed_run(path: Path, root: Path, kills: int, rng: random.Random, window: float) -> tuple[Path, int]:
    """Starts the run, SIGKILLs it `kills` times at random moments (each within `window` seconds
    of a start or resume), resumes after each kill, then lets it finish. Returns the run directory
    and how many kills landed before the run had finished."""
    landed = 0
    resume = False
    for _ in range(kills):
        if resume and not (root / "killme").exists():
            resume = False  # Killed before the run directory existed: start again.
        proc = subprocess.Popen(_command(path, root, resume), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=_env())
        time.sleep(rng.uniform(0.5, window))
        if proc.poll() is None:
            proc.kill()
            landed += 1
        proc.wait()
        runs = list((root / "killme").glob("*/config.json")) if (root / "killme").exists() else []
        resume = bool(runs)
    if resume:
        subprocess.run(_command(path, root, True), check=True, capture_output=True, env=_env())
    else:
        subprocess.run(_command(path, root, False), check=True, capture_output=True, env=_env())
    runs = sorted((root / "killme").iterdir())
    return runs[-1], landed


def final_arrays(run_dir: Path) -> list[np.ndarray]:
    """Every array of the newest latest checkpoint (training state and best state)."""
    import orbax.checkpoint as ocp

    manager = ocp.CheckpointManager(run_dir.absolute() / "ckpt" / "latest")
    tree = manager.restore(manager.latest_step(), args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    manager.close()
    return [np.asarray(a) for a in jax.tree.leaves(tree["state"])]


def same_run(a: Path, b: Path) -> list[str]:
    """What differs between two finished runs ([] when they are bit-identical)."""
    problems = []
    history = [[{k: v for k, v in json.loads(line).items() if k != "epoch_time_s"}
                for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (a, b)]
    if history[0] != history[1]:
        problems.append(f"metrics.jsonl differs (epochs {[r['epoch'] for r in history[0]]} vs "
                        f"{[r['epoch'] for r in history[1]]})")
    tests = [json.loads((d / "summary.json").read_text())["test"] for d in (a, b)]
    if tests[0] != tests[1]:
        problems.append("test metrics differ")
    arrays = [final_arrays(d) for d in (a, b)]
    if len(arrays[0]) != len(arrays[1]) or not all(np.array_equal(x, y) for x, y in zip(*arrays)):
        problems.append("final checkpoint arrays differ")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--window", type=float, help="kill within this many seconds of a start (default: the "
                        "uninterrupted run's wall time: kills in start-up, training, writes and after the end)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mtljax-kill-resume"))
    parser.add_argument("--update", type=Path, help="write the result line into this Markdown file (kill markers)")
    args = parser.parse_args()
    import shutil

    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    path = write_setup(args.workdir)
    t = time.perf_counter()
    reference = run_to_end(path, args.workdir / "straight")
    window = args.window or time.perf_counter() - t
    t = time.perf_counter()
    run_dir, landed = killed_run(path, args.workdir / "killed", args.kills, random.Random(args.seed), window)
    problems = same_run(reference, run_dir)
    line = (f"{landed} of {args.kills} SIGKILLs (each within {window:.1f} s of a start) landed before the run "
            f"finished; resumed after each "
            f"({time.perf_counter() - t:.0f} s in all): "
            f"{'bit-identical to the uninterrupted run' if not problems else '; '.join(problems)}.")
    print(line)
    if args.update:
        from mtljax import results

        results.update_readme(args.update, f"`python -m benchmarks.kill_resume --kills {args.kills}`: {line}", "kill")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
