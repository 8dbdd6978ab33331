"""The benchmark's statistics on hand-computed cases and against independent solutions."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from mtljax.outputs import stats


def test_t_interval_by_hand():
    out = stats.t_interval([1.0, 2.0, 3.0])
    assert (out["n"], out["mean"], out["std"]) == (3, 2.0, pytest.approx(1.0))
    assert out["half"] == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)  # t(0.975; 2) from tables.
    assert out["low"] == pytest.approx(2.0 - out["half"]) and out["high"] == pytest.approx(2.0 + out["half"])
    assert math.isnan(stats.t_interval([0.5])["half"])  # One seed: no interval, never a zero one.


def test_paired_difference_matches_a_paired_t_test():
    a = np.array([97.1, 96.8, 97.4, 97.0, 96.9])
    b = np.array([96.9, 96.9, 97.0, 96.6, 96.8])  # Paired by seed; a − b = .2, −.1, .4, .4, .1.
    out = stats.paired_difference(a, b)
    assert out["mean"] == pytest.approx(0.2)
    assert out["std"] == pytest.approx(math.sqrt(((0) ** 2 + 0.3 ** 2 + 0.2 ** 2 + 0.2 ** 2 + 0.1 ** 2) / 4))
    reference = scipy_stats.ttest_rel(a, b).confidence_interval(0.95)  # An independent route.
    assert (out["low"], out["high"]) == (pytest.approx(reference.low), pytest.approx(reference.high))
    assert out["excludes_zero"] == float(reference.low > 0)
    shifted = stats.paired_difference(a + 1.0, a)  # Every seed 1 better: the interval is the point 1.
    assert shifted["excludes_zero"] == 1.0 and shifted["low"] == pytest.approx(1.0)
    assert stats.paired_difference([1.0, 2.0, 3.0], [2.0, 1.0, 3.0])["excludes_zero"] == 0.0
    with pytest.raises(ValueError, match="pairs"):
        stats.paired_difference([1.0, 2.0], [1.0])


def test_delta_m_signs():
    higher = {"left": True, "sum": False}
    base = {"left": 0.97, "sum": 0.60}
    # Better on both (higher accuracy, lower error): positive; worse on both: negative.
    assert stats.delta_m({"left": 0.98, "sum": 0.50}, base, higher) == pytest.approx(
        100 * (0.01 / 0.97 + 0.10 / 0.60) / 2)
    assert stats.delta_m({"left": 0.96, "sum": 0.70}, base, higher) == pytest.approx(
        100 * (-0.01 / 0.97 - 0.10 / 0.60) / 2)
    assert stats.delta_m(base, base, higher) == 0.0
    # A lower error is better even when the accuracy drops by the same relative amount.
    assert stats.delta_m({"left": 0.97 * 0.99, "sum": 0.60 * 0.98}, base, higher) > 0


def test_pareto_mask_and_beyond_front():
    points = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [2.5, 2.5], [2.0, 2.0]])
    np.testing.assert_array_equal(stats.pareto_mask(points), [True, True, True, False, True])
    front = points[stats.pareto_mask(points)]
    assert stats.beyond_front([1.5, 1.5], front)  # Better than the front can reach.
    assert not stats.beyond_front([2.5, 2.5], front)  # Dominated.
    assert not stats.beyond_front([2.0, 2.0], front)  # On it.
    assert stats.beyond_front([0.5, 4.0], front)  # Outside its range: nothing dominates it.


def _inclusion_exclusion(points, ref):
    """The hypervolume as Σ over non-empty subsets S of (−1)^{|S|+1} · vol(∩ boxes of S): the
    intersection of the boxes [p, ref] is the box [max over S, ref]."""
    total = 0.0
    for k in range(1, len(points) + 1):
        for subset in itertools.combinations(points, k):
            corner = np.max(subset, axis=0)
            total += (-1) ** (k + 1) * np.prod(np.clip(np.asarray(ref) - corner, 0, None))
    return total


def test_hypervolume_of_known_fronts():
    assert stats.hypervolume(np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]]), [4.0, 4.0]) == pytest.approx(6.0)
    assert stats.hypervolume(np.array([[1.0, 1.0, 1.0]]), [2.0, 3.0, 4.0]) == pytest.approx(6.0)
    # A dominated point and one beyond the reference add nothing.
    assert stats.hypervolume(np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.0, 3.0], [5.0, 0.0]]),
                             [4.0, 4.0]) == pytest.approx(6.0)
    assert stats.hypervolume(np.zeros((0, 2)), [1.0, 1.0]) == 0.0


@pytest.mark.parametrize("dims", [2, 3, 4])
def test_hypervolume_matches_inclusion_exclusion(dims):
    rng = np.random.default_rng(dims)
    for _ in range(20):
        points = rng.uniform(0, 1, (int(rng.integers(1, 8)), dims))
        points[rng.uniform(size=len(points)) < 0.2, 0] = points[0, 0]  # Ties on an objective.
        ref = np.full(dims, 0.9)  # Some points lie beyond it.
        inside = points[np.all(points < ref, axis=1)]
        assert stats.hypervolume(points, ref) == pytest.approx(_inclusion_exclusion(inside, ref), abs=1e-12)
