"""The epoch log: metrics.jsonl, TensorBoard events and one line per epoch on the console; the
learning curves once training ends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from tqdm import tqdm

from mtljax.outputs import plots, tblog
from mtljax.outputs.background import Background
from mtljax.train import parallel


class EpochLog:
    """What the training loop reports to (`loop.train_and_evaluate(log=...)`): process 0 writes
    `metrics.jsonl` and a console line after each epoch, and has `outputs` (its worker thread)
    write the TensorBoard events, and after the last epoch the learning-curve and conflict figures
    (while the test split is evaluated)."""

    def __init__(self, run_dir: Path, tasks: Mapping[str, Any], outputs: Background):
        self.run_dir, self.tasks, self.outputs = Path(run_dir), tasks, outputs

    def start(self, history: list[dict]) -> None:
        """The history as restored (empty for a new run)."""
        write_history(self.run_dir / "metrics.jsonl", history)

    def epoch(self, history: list[dict]) -> None:
        """After each epoch: the history so far, its last record on the console."""
        write_history(self.run_dir / "metrics.jsonl", history)
        if parallel.is_primary():
            self.outputs.submit("tensorboard", tblog.write_events, self.run_dir, list(history))
            tqdm.write(log_line(history[-1], self.tasks))

    def trained(self, history: list[dict]) -> None:
        """After the last epoch: the figures of the history (`curves.png`, `conflict.png`)."""
        if parallel.is_primary():
            self.outputs.submit("figures", plots.plot_curves, list(history), self.tasks, self.run_dir / "curves.png")
            self.outputs.submit("figures", plots.plot_conflict, list(history), self.run_dir / "conflict.png")


def log_line(record: Mapping[str, Any], tasks: Mapping[str, Any]) -> str:
    """`epoch | train/val loss | each task's validation headline | lr | seconds`."""
    parts = [f"epoch {record['epoch']:3d}", f"loss {record['train/loss']:.4f}/{record['val/loss']:.4f}"]
    parts += [f"{t} {task.format(record[f'val/{t}/{task.headline}'])}" for t, task in tasks.items()]
    parts += [f"lr {record['lr']:.2e}", f"{record['epoch_time_s']:.1f}s"]
    return " | ".join(parts)


def write_history(path: Path, history: list[dict]) -> None:
    """Rewrites metrics.jsonl from the history (atomically), one line per epoch (process 0 only)."""
    if not parallel.is_primary():
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in history))
    tmp.replace(path)
