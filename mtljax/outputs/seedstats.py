"""Across-seed statistics: mean, sample standard deviation and a 95 % confidence interval; and the
accuracy of the seeds' majority vote."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from mtljax.outputs import stats


def summarize(values: Sequence[float]) -> dict[str, float]:
    """mean, std (sample, n-1) and ci95 (half-width of the t interval of the mean) of `values`;
    one value: std and ci95 0."""
    if len(values) < 2:
        return {"mean": float(np.mean(values)), "std": 0.0, "ci95": 0.0}
    interval = stats.t_interval(values)
    return {"mean": interval["mean"], "std": interval["std"], "ci95": interval["half"]}


def summarize_runs(per_seed: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """For every metric of the per-seed dicts: its `summarize` over seeds."""
    return {key: summarize([m[key] for m in per_seed]) for key in per_seed[0]}


def majority_vote(preds: np.ndarray) -> np.ndarray:
    """The class most seeds predict for each example (S×N predictions → N); a tie goes to the
    tied class that the lowest-numbered seed predicts."""
    preds = np.asarray(preds)
    counts = np.zeros((preds.shape[1], int(preds.max()) + 1), np.int32)
    for row in preds:
        counts[np.arange(preds.shape[1]), row] += 1
    best = counts.max(axis=1)
    first = np.argmax(counts[np.arange(preds.shape[1]), preds] == best, axis=0)  # First seed holding a top class.
    return preds[first, np.arange(preds.shape[1])]


def vote_accuracy(preds: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray]) -> dict[str, float]:
    """`task/accuracy` of the seeds' majority vote (an ensemble of the seeds), per task."""
    return {f"{t}/accuracy": float(np.mean(majority_vote(p) == np.asarray(truth[t]))) for t, p in preds.items()}
