"""The methods added beside the first fourteen, each checked against its paper's definition and an
independent NumPy/SciPy computation on random gradient matrices, and the properties the papers
state (no conflict, equal cosines, the PCGrad special case, reductions to the plain sum)."""

from __future__ import annotations

import importlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from scipy.optimize import minimize, root

from mtljax import mtl
from mtljax.mtl import solvers, strategies
from mtljax.mtl.methods import (config as config_method, db_mtl, dualproj, excessmtl, fairgrad, gls, graddrop,
                                gradvac, moco, modo, nash_mtl, pcgrad, sdmgrad)
from test_strategies import gradient_matrices


# Jitted once per shape (hypothesis draws a few shapes), rather than traced op by op per example.
_dualproj, _config, _graddrop = jax.jit(dualproj.dualproj), jax.jit(config_method.config_direction), \
    jax.jit(graddrop.graddrop, static_argnames="leak")
_fair_weights, _fair, _nash = jax.jit(fairgrad.fairgrad_weights), jax.jit(fairgrad.fairgrad), \
    jax.jit(nash_mtl.nash_mtl)
_gradvac, _pcgrad = jax.jit(gradvac.gradvac), jax.jit(pcgrad.pcgrad)
_sdmgrad = jax.jit(sdmgrad.sdmgrad, static_argnames="iters")


def _simplex_qp(objective, t):
    """argmin over the simplex of `objective` (SciPy SLSQP), from the uniform point."""
    res = minimize(objective, np.full(t, 1.0 / t), method="SLSQP", bounds=[(0, 1)] * t,
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}], options={"ftol": 1e-14, "maxiter": 500})
    return res.x


def _ctx(name, step=0, steps_per_epoch=1, weights=None, t=2, key=0, **options):
    return mtl.context(name, jax.random.key(key), step, steps_per_epoch, weights, num_tasks=t, **options)


# --- Stateless aggregators ---------------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(gradient_matrices(2, 4))
def test_dualproj_projects_the_mean_onto_the_dual_cone(g):
    gd = g.astype(np.float64)
    d = np.asarray(_dualproj(jnp.asarray(g)), np.float64)
    scale = np.abs(gd).sum() * (np.abs(d).sum() + 1)
    assert np.all(gd @ d >= -1e-4 * scale)  # Never conflicts with a task.
    mean = gd.mean(0)
    res = minimize(lambda x: 0.5 * np.sum((x - mean) ** 2), mean, jac=lambda x: x - mean, method="SLSQP",
                   constraints=[{"type": "ineq", "fun": lambda x: gd @ x, "jac": lambda x: gd}],
                   options={"ftol": 1e-12, "maxiter": 500})
    np.testing.assert_allclose(d, len(g) * res.x, atol=2e-3 * (1 + np.abs(d).max()))


@settings(max_examples=20, deadline=None)
@given(gradient_matrices(2, 4))
def test_config_has_equal_positive_cosines(g):
    gd = g.astype(np.float64)
    u = gd / np.linalg.norm(gd, axis=1, keepdims=True)
    if np.linalg.svd(u, compute_uv=False)[-1] < 1e-2:
        return  # Nearly dependent unit gradients: no direction has equal cosines with all of them.
    d = np.asarray(_config(jnp.asarray(g)), np.float64)
    cos = u @ d / np.linalg.norm(d)
    assert np.all(cos > 0)
    np.testing.assert_allclose(cos, cos.mean(), atol=1e-3)
    unit = np.linalg.pinv(u) @ np.ones(len(g))  # NumPy: the least-norm x with Ux = 1.
    unit /= np.linalg.norm(unit)
    np.testing.assert_allclose(d, (gd @ unit).sum() * unit, rtol=1e-3, atol=1e-3)


@settings(max_examples=20, deadline=None)
@given(gradient_matrices(2, 4))
def test_graddrop_matches_numpy_with_the_same_draws(g):
    key = jax.random.key(5)
    d = np.asarray(_graddrop(jnp.asarray(g), key))
    u = np.asarray(jax.random.uniform(key, (g.shape[1],)))
    purity = 0.5 * (1 + g.sum(0) / (np.abs(g).sum(0) + 1e-12))
    keep = ((purity > u) & (g > 0)) | ((purity < u) & (g < 0))
    np.testing.assert_allclose(d, (keep * g).sum(0), rtol=1e-5, atol=1e-6)
    kept = np.where(keep, g, 0.0)  # Each coordinate keeps entries of one sign only.
    assert np.all((kept >= 0).all(0) | (kept <= 0).all(0))
    np.testing.assert_allclose(_graddrop(jnp.asarray(g), key, leak=1.0), g.sum(0), rtol=1e-5, atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(gradient_matrices(2, 3))
def test_fairgrad_solves_its_equations_and_matches_scipy(g):
    m = (g.astype(np.float64) @ g.T.astype(np.float64))
    if np.linalg.eigvalsh(m)[0] < 1e-2:
        return  # Nearly singular: the α-fair weights grow without bound.
    for alpha in (0.5, 2.0):
        w = np.asarray(_fair_weights(jnp.asarray(m, jnp.float32), alpha), np.float64)
        assert np.all(w > 0)
        np.testing.assert_allclose(m @ w, w ** (-1 / alpha), rtol=2e-3)
        ref = root(lambda v: m @ np.exp(v) - np.exp(v) ** (-1 / alpha), np.zeros(len(g)), tol=1e-12)
        np.testing.assert_allclose(w, np.exp(ref.x), rtol=2e-3)
    np.testing.assert_allclose(_fair(jnp.asarray(g), 1.0), _nash(jnp.asarray(g)),
                               rtol=1e-3, atol=1e-4)  # α = 1: Nash-MTL.


@settings(max_examples=20, deadline=None)
@given(gradient_matrices(2, 4))
def test_project_simplex_matches_scipy(g):
    v = g[0][: len(g) + 1].astype(np.float64) * 2
    w = np.asarray(solvers.project_simplex(jnp.asarray(v, jnp.float32)), np.float64)
    np.testing.assert_allclose(w, _simplex_qp(lambda x: np.sum((x - v) ** 2), len(v)), atol=1e-4)


# --- Stateful aggregators ------------------------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(gradient_matrices(2, 4))
def test_gradvac_with_zero_targets_is_pcgrad(g):
    key = jax.random.key(7)
    t = len(g)
    d, targets = _gradvac(jnp.asarray(g), jnp.zeros((t, t)), key, 0.0)
    np.testing.assert_allclose(d, _pcgrad(jnp.asarray(g), key), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(targets, np.zeros((t, t)))


def test_gradvac_sets_the_target_cosine_and_moves_the_targets():
    g = jnp.asarray([[1.0, 0.2, 0.0], [0.3, 1.0, 0.5]])
    cos = float(g[0] @ g[1] / jnp.linalg.norm(g[0]) / jnp.linalg.norm(g[1]))
    targets = jnp.asarray([[0.0, 0.9], [0.9, 0.0]])  # Above the cosine: both are moved to it.
    d, new = gradvac.gradvac(g, targets, jax.random.key(0), beta=0.25)
    gd = np.asarray(g, np.float64)
    moved = []
    for i, j in ((0, 1), (1, 0)):  # NumPy: Eq. 3's coefficient, then the cosine it gives.
        a = np.linalg.norm(gd[i]) * (0.9 * np.sqrt(1 - cos**2) - cos * np.sqrt(1 - 0.81)) / (
            np.linalg.norm(gd[j]) * np.sqrt(1 - 0.81))
        moved.append(gd[i] + a * gd[j])
        assert moved[-1] @ gd[j] / np.linalg.norm(moved[-1]) / np.linalg.norm(gd[j]) == pytest.approx(0.9, abs=1e-5)
    np.testing.assert_allclose(d, moved[0] + moved[1], rtol=1e-5)
    np.testing.assert_allclose(new, [[0.0, 0.75 * 0.9 + 0.25 * cos], [0.75 * 0.9 + 0.25 * cos, 0.0]], rtol=1e-5)


def test_moco_update_by_hand():
    g = np.asarray([[1.0, 0.0, 2.0], [0.0, -1.0, 1.0]], np.float32)
    y0 = np.asarray([[0.5, 0.5, 0.5], [1.0, 0.0, 0.0]], np.float32)
    lam0 = np.asarray([0.5, 0.5], np.float32)
    d, state = moco.moco(jnp.asarray(g), {"y": jnp.asarray(y0), "lam": jnp.asarray(lam0)}, jnp.asarray(3),
                             beta=0.5, beta_sigma=0.5, gamma=0.1, gamma_sigma=0.5, rho=0.2)
    y = y0 - 0.5 / 4**0.5 * (y0 - g)
    step = lam0 - 0.1 / 4**0.5 * ((y @ y.T + 0.2 * np.eye(2)) @ lam0)
    lam = _simplex_qp(lambda w: np.sum((w - step) ** 2), 2)
    np.testing.assert_allclose(state["y"], y, rtol=1e-6)
    np.testing.assert_allclose(state["lam"], lam, atol=1e-5)
    np.testing.assert_allclose(d, 2 * lam @ y, rtol=1e-4)
    d0, s0 = moco.moco(jnp.asarray(g), {"y": jnp.zeros((2, 3)), "lam": jnp.asarray(lam0)}, jnp.asarray(0),
                           beta=0.5, beta_sigma=0.5, gamma=0.1, gamma_sigma=0.5, rho=0.0)
    np.testing.assert_allclose(s0["y"], g)  # The first step tracks the gradients themselves.


def test_db_mtl_balances_magnitudes_by_hand():
    g = np.asarray([[3.0, 0.0], [0.0, 1.0]], np.float32)
    avg = np.asarray([[1.0, 1.0], [0.0, 2.0]], np.float32)
    d, state = db_mtl.db_mtl(jnp.asarray(g), {"avg": jnp.asarray(avg)}, jnp.asarray(3), beta=0.9, beta_sigma=0.5)
    b = 0.9 / 4**0.5
    new = b * avg + (1 - b) * g
    norms = np.linalg.norm(new, axis=1)
    np.testing.assert_allclose(state["avg"], new, rtol=1e-6)
    np.testing.assert_allclose(d, (norms.max() / norms) @ new, rtol=1e-5)
    same = jnp.asarray([[1.0, 2.0], [1.0, 2.0]])
    np.testing.assert_allclose(db_mtl.db_mtl(same, {"avg": same}, jnp.asarray(0), 0.9, 0.5)[0], [2.0, 4.0])


def test_db_mtl_differentiates_log_losses():
    scale = strategies.get("db_mtl").scale_losses
    grad = jax.grad(lambda l: jnp.sum(scale(l, {})))(jnp.asarray([2.0, 0.5]))
    np.testing.assert_allclose(grad, [0.5, 2.0], rtol=1e-5)


def test_excessmtl_two_steps_by_hand():
    g = np.asarray([[2.0, 0.0, 1.0], [0.0, 1.0, 1.0]], np.float32)
    state = strategies.get("excessmtl").init_state(2, 3)
    acc, w, initial = np.zeros((2, 3)), np.ones(2), None
    for k, scale in enumerate((1.0, 0.5)):
        gk = g * np.asarray([[1.0], [scale]], np.float32)
        d, head_w, state = excessmtl.excessmtl(jnp.asarray(gk), state, jnp.asarray(k), lr=0.3)
        acc = acc + gk**2
        risk = (gk**2 / np.sqrt(acc + 1e-7)).sum(1)
        initial = risk if k == 0 else initial
        w = w * np.exp(0.3 * risk / initial)
        w = 2 * w / w.sum()
        np.testing.assert_allclose(head_w, w, rtol=1e-5)
        np.testing.assert_allclose(d, w @ gk, rtol=1e-5)
    assert w[0] > w[1]  # Task 1's gradient shrank, so its estimated excess risk fell: less weight.


def test_modo_update_by_hand_and_its_fixed_point_is_mgda():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(3, 3, 5)).astype(np.float32)  # Three samples.
    lam0 = np.asarray([0.2, 0.5, 0.3], np.float32)
    d, lam = modo.modo(jnp.asarray(g), jnp.asarray(lam0), gamma=0.1, rho=0.05)
    scale = np.mean(np.linalg.norm(g[0], axis=1) * np.linalg.norm(g[1], axis=1))
    step = lam0 - 0.1 * ((g[0] @ g[1].T / scale + 0.05 * np.eye(3)) @ lam0)
    expected = _simplex_qp(lambda w: np.sum((w - step) ** 2), 3)
    np.testing.assert_allclose(lam, expected, atol=1e-5)
    np.testing.assert_allclose(d, 3 * expected @ g[2], rtol=1e-3, atol=1e-5)
    one = jnp.asarray(g[0])  # One sample, many small steps: MGDA's min-norm weights.
    lam = jax.jit(lambda: jax.lax.fori_loop(0, 3000, lambda _, l: modo.modo(one, l, 0.05, 0.0)[1],
                                            jnp.full(3, 1 / 3)))()
    np.testing.assert_allclose(lam, solvers.min_norm_weights_exact(solvers.gram(one)), atol=2e-3)


@settings(max_examples=10, deadline=None)
@given(gradient_matrices(2, 3))
def test_sdmgrad_weights_solve_the_regularised_min_norm_problem(g):
    gd = g.astype(np.float64)
    mean = gd.mean(0)
    w = _simplex_qp(lambda w: 0.5 * np.sum((w @ gd + 0.3 * mean) ** 2), len(g))
    d, got = _sdmgrad(jnp.asarray(g), jnp.full(len(g), 1 / len(g)), 0.3, 0.2, iters=2000)
    value = lambda v: 0.5 * np.sum((np.asarray(v, np.float64) @ gd + 0.3 * mean) ** 2)
    assert value(got) <= value(w) + 1e-4 * (1 + value(w))
    np.testing.assert_allclose(d, len(g) * (np.asarray(got) @ gd + 0.3 * mean) / 1.3, rtol=1e-3, atol=1e-4)


# --- Loss weightings -----------------------------------------------------------------------------------

def test_gls_is_the_scaled_geometric_mean():
    losses = jnp.asarray([2.0, 0.5, 1.0])
    value, _ = gls.gls(losses, {}, {}, _ctx("gls", t=3))
    assert float(value) == pytest.approx(3.0, rel=1e-6)  # 3·(2·0.5·1)^(1/3).
    grad = jax.grad(lambda l: gls.gls(l, {}, {}, _ctx("gls", t=3))[0])(losses)
    np.testing.assert_allclose(grad, 1.0 / np.asarray(losses), rtol=1e-5)  # L_gls/(T·L_t)·T.


def test_stch_warms_up_on_the_sum_then_smooths_the_maximum():
    stch = strategies.get("stch")
    state = stch.init_state(2, 0)
    for step, losses in enumerate(([2.0, 1.0], [4.0, 3.0])):  # Warm-up: 2 steps (1 epoch of 2).
        value, state = stch.loss(jnp.asarray(losses), {}, state, _ctx("stch", step, 2, mu=0.5))
        assert float(value) == pytest.approx(sum(losses))
    losses = jnp.asarray([1.5, 0.5])
    ctx = _ctx("stch", 2, 2, mu=0.5)
    value, state2 = stch.loss(losses, {}, state, ctx)
    rel = np.log([1.5, 0.5]) - np.log([3.0, 2.0])  # The nadir: the warm-up's mean losses.
    assert float(value) == pytest.approx(2 * 0.5 * np.log(np.exp(rel / 0.5).sum()), rel=1e-5)
    grad = jax.grad(lambda l: stch.loss(l, {}, state, ctx)[0])(losses)
    p = np.exp(rel / 0.5) / np.exp(rel / 0.5).sum()
    np.testing.assert_allclose(grad, 2 * p / np.asarray(losses), rtol=1e-5)
    np.testing.assert_allclose(state2["sum"], [6.0, 4.0])  # Frozen after the warm-up.


def test_famo_weights_and_logit_update_by_hand():
    famo = strategies.get("famo")
    state = {"logits": jnp.asarray([0.3, -0.2])}
    losses = jnp.asarray([1.0, 0.25])
    grad = jax.grad(lambda l: famo.loss(l, {}, state, _ctx("famo"))[0])(losses)
    z = np.exp([0.3, -0.2]) / np.exp([0.3, -0.2]).sum()
    ratio = z / np.asarray(losses)
    np.testing.assert_allclose(grad, 2 * ratio / ratio.sum(), rtol=1e-5)
    after = jnp.asarray([0.5, 0.24])  # Task 0 improved much more than task 1.
    new = famo.after_update(state, losses, after, _ctx("famo", lr=0.1, decay=0.01))
    delta = np.log([1.0, 0.25]) - np.log([0.5, 0.24])
    expected = np.asarray([0.3, -0.2]) - 0.1 * (z * (delta - z @ delta) + 0.01 * np.asarray([0.3, -0.2]))
    np.testing.assert_allclose(new["logits"], expected, rtol=1e-5)
    assert np.diff(np.asarray(new["logits"]))[0] > np.diff([0.3, -0.2])[0]  # Task 0 lost weight.


def test_imtl_scales_losses_and_learns_the_scales():
    scale = strategies.get("imtl").scale_losses
    params = {"loss_scale": jnp.asarray([0.0, np.log(2.0)])}
    losses = jnp.asarray([2.0, 0.5])
    np.testing.assert_allclose(scale(losses, params), [2.0, 1.0 - np.log(2.0)], rtol=1e-6)
    grad = jax.grad(lambda p: jnp.sum(scale(losses, p)))(params)["loss_scale"]
    np.testing.assert_allclose(grad, [2.0 - 1.0, 1.0 - 1.0], atol=1e-6)  # e^s·L − 1: zero at e^s·L = 1.


# --- Every method -------------------------------------------------------------------------------------

# The bilevel methods need a look-ahead batch (tests/test_bilevel.py); PCD its primary task.
GRADIENT_METHODS = [n for n in strategies.STRATEGIES if strategies.get(n).kind != "loss"
                    and strategies.get(n).lookahead is None]
OPTIONS = {"pcd": {"primary": 0}}


@pytest.mark.parametrize("name", GRADIENT_METHODS)
def test_every_aggregator_jits_vmaps_and_sums_agreeing_gradients(name):
    g = jnp.asarray(np.random.default_rng(1).normal(size=(2, 3, 5)), jnp.float32)
    key = jax.random.key(0)
    options = OPTIONS.get(name, {})
    batched = jax.jit(jax.vmap(lambda m: mtl.aggregate(name, m, key, **options)))(g)
    for k in range(2):
        np.testing.assert_allclose(batched[k], mtl.aggregate(name, g[k], key, **options), rtol=1e-3, atol=1e-4)
    if name not in ("cagrad", "nash_mtl", "fairgrad"):  # Their weights depend on the gradients' norm.
        same = jnp.tile(g[0, :1], (3, 1))  # Identical gradients: their sum.
        np.testing.assert_allclose(mtl.aggregate(name, same, key, **options), 3 * g[0, 0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", mtl.weighted_methods())
def test_a_gramian_weighting_gives_the_aggregators_direction(name):
    """TorchJD's shape: the weights of the Gramian alone, applied to the rows, are the direction."""
    g = jnp.asarray(np.random.default_rng(2).normal(size=(3, 7)), jnp.float32)
    w = mtl.weights(name, solvers.gram(g))
    assert w.shape == (3,)
    np.testing.assert_allclose(w @ g, mtl.aggregate(name, g), rtol=1e-4, atol=1e-5)  # (No option is needed.)


def test_weights_of_a_method_without_a_weighting_says_which_have_one():
    with pytest.raises(ValueError, match="'pcgrad' has no Gramian weighting; these do: mgda"):
        mtl.weights("pcgrad", jnp.eye(2))


@pytest.mark.parametrize("name", strategies.STRATEGIES.names())
def test_every_method_is_one_module_citing_its_source(name):
    """A built-in method lives in mtljax/mtl/methods/<name>.py, whose docstring names its paper
    (author and year) or says what it is."""
    module = importlib.import_module(f"mtljax.mtl.methods.{name}")
    assert module.__doc__ and (re.search(r"\(\w.* (19|20)\d\d", module.__doc__) or name in ("equal", "static"))
