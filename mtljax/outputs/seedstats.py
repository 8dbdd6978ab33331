"""Across-seed statistics: mean, sample standard deviation and a 95 % confidence interval; and the
accuracy of the seeds' majority vote."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

# Two-sided 97.5 % quantiles of Student's t for 1..30 degrees of freedom (then 1.96).
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
         2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
         2.052, 2.048, 2.045, 2.042]


def t_quantile_975(dof: int) -> float:
    """Student's t 97.5 % quantile (for a two-sided 95 % interval) with `dof` degrees of freedom."""
    return _T975[dof - 1] if dof <= len(_T975) else 1.96


def summarize(values: Sequence[float]) -> dict[str, float]:
    """mean, std (sample, n-1) and ci95 (half-width of the t interval of the mean) of `values`."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"mean": mean, "std": 0.0, "ci95": 0.0}
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return {"mean": mean, "std": std, "ci95": t_quantile_975(n - 1) * std / math.sqrt(n)}


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
