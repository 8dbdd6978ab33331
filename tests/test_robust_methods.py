"""Krum, TrimmedMean, PCD, CR-MOGM and ConicGrad, each against its definition and an independent
NumPy/SciPy computation on random gradient matrices; their option checks."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize

from mtljax import mtl
from mtljax.mtl.methods import conicgrad, krum, pcd
from mtljax.mtl.solvers import gram

_krum = jax.jit(krum.krum_weights, static_argnames=("n_byzantine", "n_selected"))
_pcd = jax.jit(pcd.pcd_weights, static_argnames="primary")
_conic = jax.jit(conicgrad.conicgrad_weights)


def _matrices(count, tasks=(3, 6), dim=7, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        t = int(rng.integers(*tasks))
        yield (rng.normal(size=(t, dim)) * rng.uniform(0.2, 5, size=(t, 1))).astype(np.float32)


@pytest.mark.parametrize("f, k", [(0, 1), (1, 1), (1, 2), (2, 3)])
def test_krum_selects_the_rows_of_least_score(f, k):
    for g in _matrices(6, tasks=(f + 3, f + 6)):
        t = len(g)
        dist = ((g[:, None, :].astype(np.float64) - g[None, :, :]) ** 2).sum(-1)
        scores = [np.sort(np.delete(dist[i], i))[:t - f - 2].sum() for i in range(t)]
        chosen = np.argsort(scores, kind="stable")[:k]
        np.testing.assert_allclose(np.asarray(mtl.aggregate("krum", jnp.asarray(g), n_byzantine=f, n_selected=k)),
                                   t * g[chosen].mean(0), rtol=1e-5, atol=1e-5)


def test_krum_ignores_an_outlier_and_is_a_gramian_weighting():
    rng = np.random.default_rng(1)
    g = rng.normal(size=(5, 6)).astype(np.float32) * 0.1 + 1.0
    g[3] = -50.0  # The adversarial row.
    w = np.asarray(_krum(gram(jnp.asarray(g)), n_byzantine=1, n_selected=4))
    assert w[3] == 0 and np.isclose(w.sum(), 5)
    np.testing.assert_allclose(np.asarray(mtl.weights("krum", gram(jnp.asarray(g)), n_byzantine=1, n_selected=4)), w)


@pytest.mark.parametrize("trim", [0, 1, 2])
def test_trimmed_mean_drops_each_coordinates_extremes(trim):
    for g in _matrices(5, tasks=(2 * trim + 1, 2 * trim + 5)):
        expected = np.sort(g, axis=0)[trim:len(g) - trim].mean(0) * len(g)
        np.testing.assert_allclose(np.asarray(mtl.aggregate("trimmed_mean", jnp.asarray(g), trim_number=trim)),
                                   expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("tau", [0.0, 0.3, 1.0])
def test_pcd_is_the_nearest_direction_to_the_primary_that_helps_every_other_task(tau):
    for g in _matrices(6):
        t, gd = len(g), g.astype(np.float64)
        for p in (0, t - 1):
            d = np.asarray(_pcd(gram(jnp.asarray(g)), p, tau), np.float64) @ gd / t
            others = np.delete(gd, p, axis=0)
            u = others / np.linalg.norm(others, axis=1, keepdims=True)
            bound = tau * np.linalg.norm(gd[p])
            assert np.all(u @ d >= bound - 1e-3 * (1 + bound))  # The constraint holds.
            res = minimize(lambda x: 0.5 * np.sum((x - gd[p]) ** 2), gd[p], jac=lambda x: x - gd[p], method="SLSQP",
                           constraints=[{"type": "ineq", "fun": lambda x: u @ x - bound, "jac": lambda x: u}],
                           options={"ftol": 1e-14, "maxiter": 1000})
            if res.success:
                np.testing.assert_allclose(d, res.x, atol=2e-3 * (1 + np.abs(res.x).max()))


def test_pcd_leaves_a_primary_gradient_that_already_helps_alone():
    g = jnp.asarray([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    np.testing.assert_allclose(np.asarray(mtl.aggregate("pcd", g, primary=0, tau=0.5)), [3.0, 0.0, 0.0], atol=1e-5)


def test_cr_mogm_is_a_moving_average_of_the_inner_weights():
    method = mtl.method("cr_mogm")
    rng = np.random.default_rng(2)
    state, beta, smoothed = method.init_state(3, 5), 0.8, None
    ctx = mtl.context("cr_mogm", num_tasks=3, beta=beta, weighting="upgrad")
    for _ in range(4):
        g = jnp.asarray(rng.normal(size=(3, 5)), jnp.float32)
        d, _, state = method.aggregate(g, jnp.ones(3), state, ctx)
        fresh = np.asarray(mtl.weights("upgrad", gram(g)))
        smoothed = fresh if smoothed is None else beta * smoothed + (1 - beta) * fresh
        np.testing.assert_allclose(np.asarray(d), smoothed @ np.asarray(g), rtol=1e-4, atol=1e-5)


def test_conicgrad_stays_in_its_cone_and_maximises_the_worst_task():
    for c in (0.0, 0.5, 0.9):
        for g in _matrices(5, tasks=(2, 6), seed=3):
            gd, p = g.astype(np.float64), g.shape[1]
            d = np.asarray(_conic(gram(jnp.asarray(g)), c), np.float64) @ gd
            g0 = gd.sum(0)
            r = np.linalg.norm(g0)
            assert np.linalg.norm(d) <= r * (1 + 1e-4)
            assert d @ g0 >= c * np.linalg.norm(d) * r - 1e-4 * r * r
            cons = [{"type": "ineq", "fun": lambda x: gd @ x[:p] - x[p]},
                    {"type": "ineq", "fun": lambda x: x[:p] @ g0 - c * np.linalg.norm(x[:p]) * r},
                    {"type": "ineq", "fun": lambda x: r**2 - x[:p] @ x[:p]}]
            best = max((minimize(lambda x: -x[p], np.r_[g0 * s, -1e3], constraints=cons, method="SLSQP",
                                 options={"maxiter": 1000, "ftol": 1e-12}) for s in (0.3, 0.6, 0.9)),
                       key=lambda res: -res.fun if res.success else -np.inf)
            scale = r * np.linalg.norm(gd, axis=1).max()
            assert (gd @ d).min() >= -best.fun - 2e-4 * scale


@pytest.mark.parametrize("name, options, message", [
    ("krum", {"n_byzantine": 1}, "krum.n_byzantine: 1 needs at least 4 tasks"),
    ("krum", {"n_selected": 4}, "krum.n_selected: 4 is more than the 3 tasks"),
    ("trimmed_mean", {"trim_number": 2}, "trimmed_mean.trim_number: 2 trims all"),
    ("pcd", {}, "pcd.primary: PCD needs its primary task"),
    ("pcd", {"primary": "depth"}, "pcd.primary: 'depth' is not one of the tasks"),
    ("conicgrad", {"c": 1.0}, "conicgrad.c: the cone's cosine must be in [0, 1)"),
    ("cr_mogm", {"weighting": "pcgrad"}, "cr_mogm.weighting: 'pcgrad' is not a Gramian weighting"),
])
def test_bad_options_are_one_line(name, options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        mtl.aggregate(name, jnp.ones((3, 4)), **options)
