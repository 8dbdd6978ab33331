"""Running a suite's cells, and finding what each one has already produced.

A cell's run is a normal run directory `<root>/<run name>/<run id>/`. The newest one whose saved
config equals the cell's config is the cell's run: with a summary it is complete and reused; without
one it was interrupted and is resumed from its last checkpoint. A run made with another config
(another protocol, another number of seeds) is never taken for the cell's.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from mtljax import config
from mtljax.compare.suites import Cell
from mtljax.outputs import rundir


@dataclasses.dataclass(frozen=True)
class CellState:
    """What a cell has: `status` "complete", "unfinished", "missing" or "refused" (the config
    rejects it: `reason`), its run directory and, when complete, its summary."""

    cell: Cell
    status: str
    run_dir: Path | None = None
    summary: dict | None = None
    reason: str = ""

    @functools.cached_property  # The page reads it twice per cell; metrics.jsonl once.
    def wall(self) -> tuple[float, bool]:
        """A complete run's wall seconds, and whether they are exact. A run resumed before
        checkpoints carried the wall time over reports only its last process's; then the sum of
        its epochs' times is the better figure, a lower bound."""
        wall = self.summary["wall_time_s"]
        epochs = sum(r["epoch_time_s"] for r in rundir.read_history(self.run_dir))
        return (wall, True) if wall >= epochs else (epochs, False)


def _canonical(cfg: Any) -> str:
    return json.dumps(cfg, sort_keys=True)


def state(cell: Cell, root: Path) -> CellState:
    """The cell's state under `root` (nothing is written)."""
    try:
        cfg = cell.config()
    except config.ConfigError as exc:
        return CellState(cell, "refused", reason=str(exc))
    expected = _canonical(json.loads(json.dumps(cfg)))
    runs = sorted(p for p in (Path(root) / cfg["name"]).glob("*") if (p / rundir.CONFIG_FILE).exists())
    for run_dir in reversed(runs):
        if _saved_config(run_dir) != expected:
            continue
        summary_path = run_dir / rundir.SUMMARY_FILE
        if summary_path.exists():
            return CellState(cell, "complete", run_dir, rundir.read_json(summary_path))
        return CellState(cell, "unfinished", run_dir)
    return CellState(cell, "missing")


def _saved_config(run_dir: Path) -> Any:
    """A run's saved config, canonical, with options added since it ran at their defaults (a
    cell is its config, not the code version that ran it); None if today's code refuses it."""
    try:
        saved = config.resolve(config.upgrade(rundir.read_json(run_dir / rundir.CONFIG_FILE)))
    except config.ConfigError:
        return None
    return _canonical(json.loads(json.dumps(config.thaw(saved))))


def command(cell: Cell, root: Path, resume_dir: Path | None = None) -> list[str]:
    """The command line that runs (or, with `resume_dir`, resumes) the cell."""
    cmd = [sys.executable, "-m", "mtljax.run", cell.experiment, "--root", str(root), "--set", *cell.overrides]
    return cmd + (["--resume", "--run-dir", str(resume_dir)] if resume_dir else [])


def launch(cmd: list[str], out) -> int:
    """Runs a cell's command in a process of its own (a crash or a leak ends with that run),
    its output to the file `out`; returns its exit code."""
    return subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode


def run(cells: list[Cell], root: Path, log: Callable[[str], None] = print) -> dict[str, int]:
    """Runs every cell that is not complete, one after another, each in its own process (its
    output appended to `<root>/<run name>.log`), resuming interrupted ones.

    Returns:
      The exit code of each cell that ran (a failed cell does not stop the others).
    """
    codes = {}
    root.mkdir(parents=True, exist_ok=True)
    for k, cell in enumerate(cells, 1):
        now = state(cell, root)
        head = f"[{k}/{len(cells)}] {cell.name}"
        if now.status in ("complete", "refused"):
            log(f"{head}: {'reused ' + str(now.run_dir) if now.status == 'complete' else 'not applicable'}")
            continue
        resume = now.run_dir if now.status == "unfinished" else None
        log(f"{head}: {'resuming ' + str(resume) if resume else 'running'}")
        start = time.perf_counter()
        with open(root / f"{cell.config()['name']}.log", "a") as out:
            codes[cell.name] = launch(command(cell, root, resume), out)
        outcome = "done" if codes[cell.name] == 0 else f"failed (exit {codes[cell.name]}; see its log)"
        log(f"{head}: {outcome} in {(time.perf_counter() - start) / 60:.1f} min")
        if codes[cell.name] in (130, 143):  # Stopped by Ctrl-C or SIGTERM: so is the suite.
            log("stopped; the same command resumes where it stopped")
            break
    return codes
