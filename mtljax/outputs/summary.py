"""A finished run's `summary.json`: test metrics (seed means, per seed, statistics over seeds, the
seeds' majority vote), confusion counts, sweep rows, timings."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from mtljax import metrics, tasks
from mtljax.tasks import format_metric
from mtljax.outputs import seedstats
from mtljax.outputs.stats import pareto_mask
from mtljax.train import sweeps
from mtljax.train.loop import RunResult
from mtljax.train.monitor import seed_mean


def build_summary(exp: Any, result: RunResult) -> dict:
    """The JSON-ready summary of `exp`'s finished run `result`.

    Metrics logged are means over replicas (seeds × sweep points), with each replica's under `test_seeds` and mean/std/ci95 under
    `test_stats` when there are several replicas; `confusion` sums the counts over seeds (one
    seed: its own) for the classification tasks; `tasks` records each task's kind and headline
    metric, so that tables read any summary without the task registry."""
    cfg, n_replicas = exp.cfg, len(exp.seeds)
    epoch_times = [r["epoch_time_s"] for r in result.history]
    summary = {
        "name": cfg["name"],
        "seeds": exp.seeds,
        "epochs_run": len(result.history),
        "best_epoch": result.best_epochs if n_replicas > 1 else result.best_epochs[0],
        "test": seed_mean(result.test_seeds),
        "confusion": confusions(exp.tasks, result.test_preds, result.test_truth),
        "wall_time_s": result.wall_time_s,
        "mean_epoch_time_s": float(np.mean(epoch_times)) if epoch_times else 0.0,
        "compile_time_s": result.compile_time_s,
        "nonfinite_steps_skipped": result.nonfinite_steps,
        "tasks": {t: {"kind": task.kind, "headline": task.headline, "higher_is_better": task.higher_is_better}
                  for t, task in exp.tasks.items()},
        "data": dict(getattr(exp, "data_info", {})),
    }
    if n_replicas > 1:
        summary["test_seeds"] = result.test_seeds
        summary["test_stats"] = seedstats.summarize_runs(result.test_seeds)
    classified = {t: p for t, p in result.test_preds.items() if exp.tasks[t].kind == "classification"}
    if n_replicas > 1 and not sweeps.is_swept(cfg) and classified:  # Seeds of one configuration: also their ensemble.
        summary["test_vote"] = seedstats.vote_accuracy(classified, result.test_truth)
    if sweeps.is_swept(cfg):  # One row per point; "test" above is then the mean over all replicas.
        summary["sweep"] = {"keys": sweeps.keys(cfg), "seeds_per_point": cfg["seeds"],
                            "rows": point_rows(exp.points, result.test_seeds, cfg["seeds"])}
    return summary


def confusions(task_map: Mapping[str, tasks.Task], preds: Mapping[str, np.ndarray],
               truth: Mapping[str, np.ndarray]) -> dict[str, list]:
    """Each classification task's test confusion counts, summed over seeds."""
    return {t: sum(metrics.confusion_matrix(truth[t], p, task.outputs) for p in preds[t]).tolist()
            for t, task in task_map.items() if task.kind == "classification"}


def headlines(summary: Mapping[str, Any]) -> dict[str, str]:
    """Task -> its headline metric, from a summary (summaries without `tasks`: accuracy)."""
    if "tasks" in summary:
        return {t: info["headline"] for t, info in summary["tasks"].items()}
    return {k.split("/")[0]: "accuracy" for k in summary["test"] if k.endswith("/accuracy")}


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
    return pareto_mask(-np.column_stack([xs, ys])).tolist()


def markdown_table(summary: Mapping[str, Any]) -> str:
    """The sweep rows of a run summary as a markdown table of each task's headline test metric
    (accuracy in %), mean ± std."""
    sweep = summary["sweep"]
    keys = list(sweep["rows"][0]["values"])
    metric = headlines(summary)
    task_names = list(metric)
    n_seeds = sweep["seeds_per_point"]
    head = [*keys, *[f"{t} {metric[t]}" + (" %" if metric[t] == "accuracy" else "") for t in task_names]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in sweep["rows"]:
        cells = [_number(row["values"][k]) for k in keys]
        for t in task_names:
            s = row["test_stats"][f"{t}/{metric[t]}"]
            spread = f" ± {format_metric(metric[t], s['std'])}" if n_seeds > 1 else ""
            cells.append(format_metric(metric[t], s["mean"]) + spread)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\n{n_seeds} seed(s) per row; run {summary.get('name', '')}."


def _number(value: float) -> str:
    return f"{value:g}" if math.isfinite(value) else str(value)
