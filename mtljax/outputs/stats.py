"""The statistics of a benchmark: intervals over seeds, Δm against single-task baselines, paired
differences, Pareto fronts and hypervolumes.

Student's t quantiles come from `scipy.special.stdtrit` (exact for any number of seeds; what
`scipy.stats.t.ppf` calls, without `scipy.stats`'s ~0.3 s import). Everything here is a pure
function of plain numbers, tested against hand-computed cases and independent solutions.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from mtljax.mtl.pareto import hypervolume  # noqa: F401 - the comparison pages' hypervolume.


def t_interval(values: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """Mean, sample standard deviation and the two-sided t-interval of the mean of `values`.

    Returns:
      {"n", "mean", "std", "half", "low", "high"}; with one value the interval is unknown (half = nan).
    """
    x = np.asarray(values, np.float64)
    n, mean = len(x), float(np.mean(x))
    if n < 2:
        return {"n": n, "mean": mean, "std": math.nan, "half": math.nan, "low": math.nan, "high": math.nan}
    from scipy import special  # Only when intervals are computed.

    std = float(np.std(x, ddof=1))
    half = float(special.stdtrit(n - 1, 0.5 + confidence / 2)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "half": half, "low": mean - half, "high": mean + half}


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """The paired difference a − b (a[i] and b[i] share seed i: initialisation and data order), its
    t-interval, and `excludes_zero` (1.0 when the interval lies wholly above or below zero)."""
    if len(a) != len(b):
        raise ValueError(f"paired_difference: {len(a)} values against {len(b)}; pairs need one each")
    out = t_interval(np.asarray(a, np.float64) - np.asarray(b, np.float64), confidence)
    out["excludes_zero"] = float(out["low"] > 0 or out["high"] < 0)
    return out


def delta_m(values: Mapping[str, float], baseline: Mapping[str, float],
            higher_is_better: Mapping[str, bool]) -> float:
    """Δm %: the mean over tasks of the signed relative difference to the single-task baseline,
    100/T · Σ_t (−1)^{l_t} (M_t − B_t) / B_t with l_t = 1 when lower is better (Maninis et al.
    2019; LibMTL's definition): positive means better than the single-task models."""
    terms = [(1 if higher_is_better[t] else -1) * (values[t] - baseline[t]) / baseline[t] for t in values]
    return 100.0 * sum(terms) / len(terms)


def dominates(p: Sequence[float], q: Sequence[float]) -> bool:
    """Whether p is at least as good as q on every objective and better on one (all minimised)."""
    p, q = np.asarray(p), np.asarray(q)
    return bool(np.all(p <= q) and np.any(p < q))


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """For each row of `points` (n × d, minimised), whether no other row dominates it."""
    points = np.asarray(points, np.float64)
    return np.array([not any(dominates(q, p) for q in points) for p in points], bool)


def beyond_front(point: Sequence[float], front: np.ndarray) -> bool:
    """Whether `point` lies outside the region the front dominates: no front point is at least as
    good on every objective (minimised). A point equal to a front point is on it, not beyond."""
    return not any(np.all(np.asarray(q) <= np.asarray(point)) for q in front)
