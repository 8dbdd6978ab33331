"""From a suite's finished runs to its statistics: per-task intervals, Δm against the single-task
baselines, paired differences against equal weighting, cost, and the scalarization front.

Units: a classification task's headline is its test accuracy in %, and its error the error rate in %;
a regression task's headline and error are its mean absolute error. Losses are the test losses.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Mapping, Sequence

import numpy as np

from mtljax.compare.cells import CellState
from mtljax.outputs import stats


@dataclasses.dataclass(frozen=True)
class Row:
    """One method's statistics (`status` other than "complete": only label, status and reason).

    Attributes:
      per_task: task -> t-interval of its headline metric over seeds.
      dm: t-interval of Δm % over seeds (None without every single-task baseline).
      vs_equal: "Δm" and each task -> paired difference to equal weighting (None without it).
      cost: mean epoch time relative to equal weighting's run; wall_s: the run's wall time
        (`wall_exact` False: a lower bound, see `CellState.wall`).
      loss, error: task -> seed mean of its test loss and of its error.
    """

    label: str
    name: str
    kind: str
    status: str
    reason: str = ""
    per_task: Mapping[str, dict] = dataclasses.field(default_factory=dict)
    dm: dict | None = None
    vs_equal: Mapping[str, dict] | None = None
    cost: float | None = None
    wall_s: float | None = None
    wall_exact: bool = True
    loss: Mapping[str, float] = dataclasses.field(default_factory=dict)
    error: Mapping[str, float] = dataclasses.field(default_factory=dict)


def headline(summary: Mapping, task: str, metrics: Mapping[str, float]) -> float:
    """A task's headline metric in display units (accuracy in %)."""
    name = summary["tasks"][task]["headline"]
    return 100.0 * metrics[f"{task}/{name}"] if name == "accuracy" else metrics[f"{task}/{name}"]


def error(summary: Mapping, task: str, metrics: Mapping[str, float]) -> float:
    """A task's error: 100 − accuracy % for classification, the headline error for regression."""
    value = headline(summary, task, metrics)
    return 100.0 - value if summary["tasks"][task]["higher_is_better"] else value


def per_seed(summary: Mapping) -> list[Mapping[str, float]]:
    """Each seed's test metrics (one seed: the summary's own)."""
    return summary.get("test_seeds") or [summary["test"]]


def mean_points(summary: Mapping, tasks: Sequence[str]) -> dict[str, dict[str, float]]:
    """"loss" and "error" -> task -> its seed mean: a run's point against the front."""
    seeds = per_seed(summary)
    return {"loss": {t: float(np.mean([m[f"{t}/loss"] for m in seeds])) for t in tasks},
            "error": {t: float(np.mean([error(summary, t, m) for m in seeds])) for t in tasks}}


def baselines(states: Sequence[CellState]) -> dict[str, float] | None:
    """Task -> the seed mean of its single-task run's headline, or None if one is not complete."""
    singles = [s for s in states if s.cell.kind == "single"]
    if not singles or any(s.status != "complete" for s in singles):
        return None
    return {s.cell.task: float(np.mean([headline(s.summary, s.cell.task, m) for m in per_seed(s.summary)]))
            for s in singles}


def seed_values(summary: Mapping, tasks: Sequence[str], base: Mapping[str, float] | None) -> dict[str, list[float]]:
    """Per seed: each task's headline, and "Δm" when the baselines are known."""
    seeds = per_seed(summary)
    values = {t: [headline(summary, t, m) for m in seeds] for t in tasks}
    if base is not None:
        higher = {t: summary["tasks"][t]["higher_is_better"] for t in tasks}
        values["Δm"] = [stats.delta_m({t: values[t][i] for t in tasks}, base, higher) for i in range(len(seeds))]
    return values


def method_rows(states: Sequence[CellState], tasks: Sequence[str]) -> list[Row]:
    """A Row per method cell (hard-sharing strategies and architectures), in the suite's order."""
    base = baselines(states)
    equal = next((s for s in states if s.cell.name == "equal" and s.status == "complete"), None)
    reference = seed_values(equal.summary, tasks, base) if equal else None
    rows = []
    for s in (s for s in states if s.cell.kind == "method"):
        if s.status != "complete":
            rows.append(Row(s.cell.label, s.cell.name, s.cell.kind, s.status, s.reason))
            continue
        values, (wall_s, wall_exact) = seed_values(s.summary, tasks, base), s.wall
        paired = reference is not None and equal.summary["seeds"] == s.summary["seeds"]
        rows.append(Row(
            s.cell.label, s.cell.name, s.cell.kind, "complete",
            per_task={t: stats.t_interval(values[t]) for t in tasks},
            dm=stats.t_interval(values["Δm"]) if base is not None else None,
            vs_equal={k: stats.paired_difference(values[k], reference[k]) for k in values} if paired else None,
            cost=s.summary["mean_epoch_time_s"] / equal.summary["mean_epoch_time_s"] if equal else None,
            wall_s=wall_s, wall_exact=wall_exact,
            **mean_points(s.summary, tasks)))
    return rows


def ranked(rows: Sequence[Row]) -> list[Row]:
    """Complete rows by mean Δm (best first; by their label without Δm), then the others."""
    done = [r for r in rows if r.status == "complete"]
    done.sort(key=lambda r: (-r.dm["mean"], r.label) if r.dm else (0.0, r.label))
    return done + [r for r in rows if r.status != "complete"]


@dataclasses.dataclass(frozen=True)
class Front:
    """The scalarization front on some tasks for one objective ("loss" or "error")."""

    tasks: tuple[str, ...]
    objective: str
    reference: tuple[float, ...]
    points: np.ndarray  # Every swept point's seed mean (P × len(tasks)).
    weights: list[dict]  # Each point's swept loss weights.
    on_front: np.ndarray  # P booleans.
    hypervolume: float  # Of the swept points.
    hypervolume_with_methods: float  # Of the swept points and every method's mean point.
    beyond: list[str]  # Methods whose mean point no swept point is at least as good as.
    methods: int  # Methods compared.


def sweep_points(summary: Mapping, tasks: Sequence[str], objective: str) -> np.ndarray:
    """The seed mean of each swept point's test loss or error, P × len(tasks)."""
    rows = summary["sweep"]["rows"]
    if objective == "loss":
        return np.array([[row["test"][f"{t}/loss"] for t in tasks] for row in rows])
    return np.array([[error(summary, t, row["test"]) for t in tasks] for row in rows])


def fronts(front: CellState, rows: Sequence[Row], tasks: Sequence[str],
           references: Mapping[str, Mapping[str, float]]) -> list[Front]:
    """The front of every pair of tasks (and of all of them when there are more than two), for
    test losses and errors, with the methods' mean points against it."""
    groups = list(itertools.combinations(tasks, 2)) + ([tuple(tasks)] if len(tasks) > 2 else [])
    done = [r for r in rows if r.status == "complete"]
    out = []
    for group, objective in itertools.product(groups, ("loss", "error")):
        idx = [tasks.index(t) for t in group]
        points = sweep_points(front.summary, tasks, objective)[:, idx]
        ref = tuple(references[objective][t] for t in group)
        mask = stats.pareto_mask(points)
        methods = np.array([[getattr(r, objective)[t] for t in group] for r in done]).reshape(-1, len(group))
        out.append(Front(group, objective, ref, points, [row["values"] for row in front.summary["sweep"]["rows"]],
                         mask, stats.hypervolume(points, ref), stats.hypervolume(np.vstack([points, methods]), ref),
                         [r.label for r, m in zip(done, methods) if stats.beyond_front(m, points[mask])], len(done)))
    return out
