"""The front figures: per pair of tasks, the swept static loss weights, their Pareto front, and
every method's mean point, on test losses and on test errors."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from mtljax.compare.analysis import Front, Row


def axis_label(task: str, objective: str, kinds: Mapping[str, dict]) -> str:
    """'left test error %', 'sum test error (MAE)', 'left test loss'."""
    if objective == "loss":
        return f"{task} test loss"
    return f"{task} test error " + ("%" if kinds[task]["headline"] == "accuracy" else f"({kinds[task]['headline'].upper()})")


def _panel(ax, front: Front, rows: Sequence[Row], singles: Mapping[str, float] | None,
           kinds: Mapping[str, dict]) -> None:
    """One objective of one pair: swept points, the front as a staircase, methods and baselines."""
    a, b = front.tasks
    ax.scatter(front.points[:, 0], front.points[:, 1], s=18, color="0.6", label="static weights (swept)")
    on = front.points[front.on_front]
    on = on[np.argsort(on[:, 0])]
    ax.step(on[:, 0], on[:, 1], where="post", color="0.3", lw=1, label="their Pareto front")
    done = [r for r in rows if r.status == "complete"]
    for k, r in enumerate(sorted(done, key=lambda r: r.name == "equal")):  # Equal weighting on top.
        point = (getattr(r, front.objective)[a], getattr(r, front.objective)[b])
        special = r.name == "equal"
        ax.scatter(*point, s=70 if special else 22, marker="*" if special else "o",
                   color="black" if special else "tab:blue", zorder=4 if special else 3,
                   label="equal weighting" if special else ("methods" if k == 0 else None))
        if r.label in front.beyond or special:
            ax.annotate(r.label, point, fontsize=6, xytext=(3, 3), textcoords="offset points")
    if singles is not None:
        ax.scatter(singles[a], singles[b], marker="x", color="tab:red", s=40, label="single-task", zorder=3)
    ax.set_xlabel(axis_label(a, front.objective, kinds))
    ax.set_ylabel(axis_label(b, front.objective, kinds))
    ax.grid(alpha=0.3)


def plot_pair(fronts: Sequence[Front], rows: Sequence[Row], singles: Mapping[str, Mapping[str, float]] | None,
              kinds: Mapping[str, dict], path: Path) -> None:
    """`fronts`: the loss and the error front of one pair of tasks; `singles`: objective -> task ->
    the single-task baselines' mean (None when missing); `kinds`: task -> {"headline", ...}."""
    from matplotlib.figure import Figure  # Imported only when a figure is drawn.

    fig = Figure(figsize=(10, 4.4))
    axes = fig.subplots(1, len(fronts))
    for ax, front in zip(np.atleast_1d(axes), fronts):
        _panel(ax, front, rows, singles.get(front.objective) if singles else None, kinds)
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{' / '.join(fronts[0].tasks)}: methods (mean of seeds) against static loss weights")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
