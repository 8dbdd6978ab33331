"""Hyper-parameter sweeps as one vmapped program: values × seeds replicas, one compile.

A sweep is the config's `sweep` section, `{dotted key: [values]}` (or `--sweep key=v1,v2,...`);
several keys make a grid. Replica r = point p × seed s (r = p·seeds + s), and every point uses the
same seeds, so points differ only in their values (common random numbers).

Only values that can be traced arguments of the train step are sweepable: they change numbers, not
shapes or program structure (SWEEPABLE). Each replica carries its values in `TrainState.hyper`, and
the step rebuilds model and optimizer from them inside the trace (`trainer.configure`). Everything
else (widths, tasks, batch size, epochs, schedule kind, ...) is refused: run one job per value.

How each key acts (all exact, not approximations):
  loss_weights.<task>   the task's weight in the summed loss;
  optimizer.lr          multiplies every update by lr / lr₀ after the optax chain, which is exactly
                        a chain built with lr for adam, adamw and sgd (each ends by scaling with the
                        learning rate); schedule floors (min_lr) scale with it;
  optimizer.weight_decay, model.dropout, model.head_dropout, augment.shift|rotate|scale
                        passed as traced values to the optimizer, model and augmentation.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Mapping, Sequence

import numpy as np

from mtljax.outputs import seedstats

SWEEPABLE = ("loss_weights.<task>", "optimizer.lr", "optimizer.weight_decay", "model.dropout",
             "model.head_dropout", "augment.shift", "augment.rotate", "augment.scale")


def is_sweepable(key: str, task_names: Sequence[str]) -> bool:
    """Whether `key` may be swept in a config with tasks `task_names`."""
    section, _, name = key.partition(".")
    if section == "loss_weights":
        return name in task_names
    return key in SWEEPABLE


def parse_sweep(text: str) -> tuple[str, list[float]]:
    """`key=v1,v2,...` -> (key, [v1, v2, ...]).

    Raises:
      ValueError: not of that form, or a value is not a number.
    """
    key, sep, raw = text.partition("=")
    try:
        values = [float(v) for v in raw.split(",")] if sep and key and raw else None
    except ValueError:
        values = None
    if values is None:
        raise ValueError(f"--sweep {text!r}: expected key=v1,v2,..., e.g. loss_weights.parity=0.25,0.5,1,2,4")
    return key, values


def grid(sweep: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """The sweep's points, `{key: value}`, in row-major order of the keys as given; [{}] for none."""
    keys = list(sweep)
    return [dict(zip(keys, values)) for values in itertools.product(*(sweep[k] for k in keys))]


def replica_values(points: Sequence[Mapping[str, float]], n_seeds: int) -> dict[str, np.ndarray]:
    """Each swept key's value per replica (points × seeds, seed fastest), as float32 arrays."""
    keys = list(points[0])
    return {key: np.repeat(np.asarray([p[key] for p in points], np.float32), n_seeds) for key in keys}


def point_rows(points: Sequence[Mapping[str, float]], per_replica: Sequence[Mapping[str, float]],
               n_seeds: int) -> list[dict[str, Any]]:
    """One row per point: its values, the seed mean of every metric, and mean/std/ci95."""
    rows = []
    for p, point in enumerate(points):
        runs = per_replica[p * n_seeds:(p + 1) * n_seeds]
        stats = seedstats.summarize_runs(runs)
        rows.append({"values": dict(point), "test": {k: s["mean"] for k, s in stats.items()}, "test_stats": stats})
    return rows


def pareto_front(xs: Sequence[float], ys: Sequence[float]) -> list[bool]:
    """For each point, whether no other point is at least as good on both axes and better on one
    (both maximised)."""
    return [not any(x2 >= x and y2 >= y and (x2 > x or y2 > y) for x2, y2 in zip(xs, ys))
            for x, y in zip(xs, ys)]


def markdown_table(summary: Mapping[str, Any]) -> str:
    """The sweep rows of a run summary as a markdown table of test accuracy %, mean ± std."""
    sweep = summary["sweep"]
    keys = list(sweep["rows"][0]["values"])
    task_names = [k.split("/")[0] for k in sweep["rows"][0]["test"] if k.endswith("/accuracy")]
    n_seeds = sweep["seeds_per_point"]
    head = [*keys, *[f"{t} accuracy %" for t in task_names]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in sweep["rows"]:
        cells = [_number(row["values"][k]) for k in keys]
        for t in task_names:
            s = row["test_stats"][f"{t}/accuracy"]
            cells.append(f"{100 * s['mean']:.2f}" + (f" ± {100 * s['std']:.2f}" if n_seeds > 1 else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\n{n_seeds} seed(s) per row; run {summary.get('name', '')}."


def _number(value: float) -> str:
    return f"{value:g}" if math.isfinite(value) else str(value)
