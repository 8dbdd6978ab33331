"""Run directories `checkpoints/<experiment>/<run-id>/` and the files written into them."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.jsonl"


def new_run_dir(root: Path, name: str) -> Path:
    """Creates and returns a fresh `root/name/<YYYYmmdd-HHMMSS>[-k]` directory."""
    base = Path(root) / name / time.strftime("%Y%m%d-%H%M%S")
    path, k = base, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            k += 1
            path = base.with_name(f"{base.name}-{k}")


def latest_run_dir(root: Path, name: str) -> Path | None:
    """The newest run of experiment `name` that has a config (run ids sort by time)."""
    runs = sorted(p for p in (Path(root) / name).glob("*") if (p / CONFIG_FILE).exists())
    return runs[-1] if runs else None


def write_json(path: Path, obj: Any) -> None:
    """Writes JSON atomically: a reader never sees a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    tmp.replace(path)


def read_history(run_dir: Path) -> list[dict]:
    """A run's epoch records from its metrics.jsonl (none if it has not finished an epoch)."""
    path = run_dir / METRICS_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def code_version() -> str | None:
    """The git commit of the mtljax checkout ("<sha>-dirty" with uncommitted changes), or None
    outside a git checkout. Stored in every summary: later speed work changes float rounding, so
    rerunning an experiment reproduces its numbers exactly only at the commit that made them."""
    repo = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if sha.returncode or dirty.returncode:
        return None
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
