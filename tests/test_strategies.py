"""MTL strategies checked from their definitions, against independent NumPy/SciPy solutions, and
by hand-computed update rules; then run end to end from a config key."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.optimize import minimize

from mtljax.mtl import diagnostics, solvers, strategies
from mtljax.mtl.methods import aligned_mtl, cagrad, imtl_g, mgda, nash_mtl, pcgrad, upgrad

jax.config.update("jax_enable_x64", False)


def gradient_matrices(min_tasks=2, max_tasks=4, dim=6):
    """Random T×P gradient matrices with entries in [-1, 1] and rows of norm > 0.1."""
    def build(draw_rows):
        g = np.asarray(draw_rows, np.float32)
        return g
    row = st.lists(st.floats(-1, 1, width=32), min_size=dim, max_size=dim)
    return st.lists(row, min_size=min_tasks, max_size=max_tasks).map(build).filter(
        lambda g: np.all(np.linalg.norm(g, axis=1) > 0.1))


AGGREGATORS = {
    "pcgrad": lambda g: pcgrad.pcgrad(g, jax.random.key(0)),
    "mgda": mgda.mgda,
    "cagrad": lambda g: cagrad.cagrad(g, 0.4),
    "imtl_g": imtl_g.imtl_g,
    "nash_mtl": nash_mtl.nash_mtl,
    "aligned_mtl": aligned_mtl.aligned_mtl,
    "upgrad": upgrad.upgrad,
}


# --- Properties from the papers -----------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(gradient_matrices(2, 2))
def test_pcgrad_two_tasks_projections_do_not_conflict(g):
    """With two tasks each projected gradient has a non-negative inner product with the other."""
    g = jnp.asarray(g)
    n2 = jnp.sum(g * g, axis=1)
    dot = g[0] @ g[1]
    p0 = g[0] - jnp.minimum(dot, 0) / n2[1] * g[1]
    p1 = g[1] - jnp.minimum(dot, 0) / n2[0] * g[0]
    assert float(p0 @ g[1]) >= -1e-5 and float(p1 @ g[0]) >= -1e-5
    np.testing.assert_allclose(pcgrad.pcgrad(g, jax.random.key(1)), p0 + p1, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(gradient_matrices(2, 4))
def test_pcgrad_matches_a_numpy_loop(g):
    """Against a direct transcription of Alg. 1, with the same random orders."""
    key = jax.random.key(3)
    t = g.shape[0]
    orders = [np.asarray(jax.random.permutation(k, t)) for k in jax.random.split(key, t)]
    out = np.zeros(g.shape[1], np.float64)
    for i in range(t):
        gi = g[i].astype(np.float64)
        for j in orders[i]:
            if j != i and gi @ g[j] < 0:
                gi = gi - (gi @ g[j]) / (g[j] @ g[j]) * g[j]
        out += gi
    np.testing.assert_allclose(pcgrad.pcgrad(jnp.asarray(g), key), out, rtol=1e-4, atol=1e-4)


@settings(max_examples=25, deadline=None)
@given(gradient_matrices(2, 4))
def test_mgda_weights_on_simplex_and_min_norm(g):
    m = g.astype(np.float64) @ g.T.astype(np.float64)
    w = np.asarray(solvers.min_norm_weights_exact(jnp.asarray(g @ g.T)), np.float64)
    assert np.all(w >= -1e-6) and abs(w.sum() - 1) < 1e-5
    fw = np.asarray(solvers.min_norm_weights(jnp.asarray(g @ g.T)), np.float64)  # Frank-Wolfe, slower.
    assert np.all(fw >= -1e-6) and abs(fw.sum() - 1) < 1e-5 and w @ m @ w <= fw @ m @ fw + 1e-5
    # Brute force: the best point of a fine grid on the simplex is no better than Frank-Wolfe's.
    t = g.shape[0]
    grid = [np.array(c) / 20 for c in itertools.product(range(21), repeat=t) if sum(c) == 20]
    best = min(float(v @ m @ v) for v in grid)
    assert float(w @ m @ w) <= best + 1e-4 * max(1.0, best)


@settings(max_examples=25, deadline=None)
@given(gradient_matrices(2, 4))
def test_upgrad_never_conflicts_and_matches_scipy(g):
    d = np.asarray(upgrad.upgrad(jnp.asarray(g)), np.float64)
    scale = np.abs(g).sum() * np.abs(d).sum() + 1e-6
    assert np.all(g.astype(np.float64) @ d >= -1e-4 * scale)
    # Independent: each projection onto the dual cone as a QP in x (SciPy SLSQP), then the mean.
    t = g.shape[0]
    gd = g.astype(np.float64)
    projections = []
    for i in range(t):
        res = minimize(lambda x: 0.5 * np.sum((x - gd[i]) ** 2), gd[i], jac=lambda x: x - gd[i],
                       constraints=[{"type": "ineq", "fun": lambda x: gd @ x, "jac": lambda x: gd}],
                       method="SLSQP", options={"ftol": 1e-12, "maxiter": 500})
        projections.append(res.x)
    np.testing.assert_allclose(d, t * np.mean(projections, axis=0), atol=2e-3 * (1 + np.abs(d).max()))


@settings(max_examples=25, deadline=None)
@given(gradient_matrices(2, 4))
def test_imtl_g_equal_projections(g):
    """IMTL-G's defining property: d has the same projection on every unit task gradient."""
    gd = g.astype(np.float64)
    u = gd / np.linalg.norm(gd, axis=1, keepdims=True)
    if np.linalg.matrix_rank(u[0] - u[1:], tol=1e-3) < g.shape[0] - 1:
        return  # Degenerate: the equal-projection system has no unique solution.
    d = np.asarray(imtl_g.imtl_g(jnp.asarray(g)), np.float64)
    proj = u @ d
    np.testing.assert_allclose(proj, proj.mean(), atol=2e-3 * (1 + np.abs(proj).max()))


@settings(max_examples=25, deadline=None)
@given(gradient_matrices(2, 4))
def test_aligned_mtl_rows_are_orthonormal_up_to_scale(g):
    """Aligned-MTL's B makes the rows of BG orthogonal with norms √λ_min (full-rank cases)."""
    m = g.astype(np.float64) @ g.T.astype(np.float64)
    lam, v = np.linalg.eigh(m)
    if lam.min() < 1e-3 * lam.max():
        return
    b = np.sqrt(lam.min()) * v @ np.diag(lam ** -0.5) @ v.T
    aligned = b @ g
    np.testing.assert_allclose(aligned @ aligned.T, lam.min() * np.eye(len(g)), atol=1e-3 * lam.max())
    np.testing.assert_allclose(aligned_mtl.aligned_mtl(jnp.asarray(g)), aligned.sum(0), rtol=1e-3, atol=1e-3)


@settings(max_examples=25, deadline=None)
@given(gradient_matrices(2, 3))
def test_nash_solves_its_bargaining_equations(g):
    m = g.astype(np.float64) @ g.T.astype(np.float64)
    if np.linalg.eigvalsh(m).min() < 1e-2 * np.trace(m):
        return  # Near-singular: the equations have no positive solution to compare with.
    alpha = np.asarray(nash_mtl.nash_weights(jnp.asarray(g @ g.T)), np.float64)
    assert np.all(alpha > 0)
    np.testing.assert_allclose(alpha * (m @ alpha), 1.0, rtol=2e-3)


def test_nash_weights_with_conflicting_gradients():
    """A case where Newton's method on log α left the region Mα > 0 and returned NaN: the damped
    Newton iteration on φ(α) = ½αᵀMα − Σ log α solves the bargaining equations."""
    g = np.array([[1.0, 0, 0, 0, 0, 0], [1.0, 0, 0, 0, 1.0, 0], [-1.0, 0, 0, 0, 0, 0.5]], np.float32)
    m = g.astype(np.float64) @ g.T.astype(np.float64)
    alpha = np.asarray(nash_mtl.nash_weights(jnp.asarray(g @ g.T)), np.float64)
    assert np.all(alpha > 0)
    np.testing.assert_allclose(alpha * (m @ alpha), 1.0, rtol=1e-4)
    # The same minimiser found independently: SciPy's L-BFGS-B on φ within α > 0.
    phi = lambda a: (0.5 * a @ m @ a - np.log(a).sum(), m @ a - 1.0 / a)
    found = minimize(phi, np.ones(3), jac=True, method="L-BFGS-B", bounds=[(1e-9, None)] * 3,
                     options={"gtol": 1e-12, "ftol": 1e-15})
    np.testing.assert_allclose(alpha, found.x, rtol=1e-4)


@settings(max_examples=20, deadline=None)
@given(gradient_matrices(2, 3))
def test_cagrad_direction_lies_on_the_ball_around_the_mean(g):
    """CAGrad's update is g₀ + λg_w with ‖λg_w‖ = c‖g₀‖: on the ball of Eq. 4 around the mean
    gradient (before the code's 1/(1 + c²) rescaling, undone here)."""
    c = 0.4
    gd = g.astype(np.float64)
    g0 = gd.mean(0)
    d = np.asarray(cagrad.cagrad(jnp.asarray(g), c), np.float64) / g.shape[0] * (1 + c ** 2)
    # d = g0 + λ g_w with ‖λ g_w‖ = c‖g0‖ (up to the code's +1e-4 smoothing).
    np.testing.assert_allclose(np.linalg.norm(d - g0), c * np.linalg.norm(g0), rtol=0.05, atol=1e-3)


@pytest.mark.parametrize("name", list(AGGREGATORS))
def test_one_task_and_identical_gradients(name):
    """Where the definitions say so, aggregation reduces to plain summation."""
    g = jnp.asarray(np.random.default_rng(0).normal(size=(1, 7)), jnp.float32)
    same = jnp.tile(g, (3, 1))
    fn = AGGREGATORS[name]
    if name == "nash_mtl":  # Its utility normalises: d = g/‖g‖ for one task.
        np.testing.assert_allclose(fn(g), g[0] / jnp.linalg.norm(g[0]), rtol=1e-4)
        return
    # CAGrad: d = (g₀ + c·g₀)/(1 + c²) when all gradients agree; c = 0 is plain summation.
    factor = (1 + 0.4) / (1 + 0.4**2) if name == "cagrad" else 1.0
    np.testing.assert_allclose(fn(g), factor * g[0], rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(fn(same), 3 * factor * g[0], rtol=2e-3, atol=1e-4)
    if name == "cagrad":
        np.testing.assert_allclose(cagrad.cagrad(same, 0.0), 3 * g[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(AGGREGATORS))
def test_aggregators_jit_and_vmap(name):
    g = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3, 5)), jnp.float32)
    batched = jax.jit(jax.vmap(AGGREGATORS[name]))(g)
    for k in range(4):
        np.testing.assert_allclose(batched[k], AGGREGATORS[name](g[k]), rtol=1e-3, atol=1e-4)


# --- Loss weightings by hand ----------------------------------------------------------------------------

def _ctx(step=0, steps_per_epoch=10, weights=(1.0, 1.0), strategy="dwa", **options):
    """The strategies' context, with `strategy`'s options (its defaults, then `options`)."""
    return strategies.context(jax.random.key(0), jnp.asarray(step), steps_per_epoch, jnp.asarray(weights),
                              strategies.default_config(strategy, **options))


def test_uncertainty_weighting_loss_and_gradient():
    uw = strategies.get("uw")
    losses = jnp.asarray([2.0, 0.5])
    params = {"log_var": jnp.asarray([0.0, np.log(4.0)])}
    value, _ = uw.loss(losses, params, {}, _ctx())
    assert float(value) == pytest.approx(0.5 * 2.0 + 0.5 * 0.25 * 0.5 + 0.5 * np.log(4.0), rel=1e-6)
    grad = jax.grad(lambda p: uw.loss(losses, p, {}, _ctx())[0])(params)["log_var"]
    # ∂/∂s = −½e^{−s}L + ½.
    np.testing.assert_allclose(grad, [-0.5 * 2.0 + 0.5, -0.5 * 0.25 * 0.5 + 0.5], rtol=1e-6)


def test_dwa_weights_follow_loss_ratios():
    dwa = strategies.get("dwa")
    state = dwa.init_state(2, 0)
    losses_by_epoch = [jnp.asarray([1.0, 1.0]), jnp.asarray([0.5, 0.9])]
    step = 0
    for epoch_losses in losses_by_epoch:  # Two epochs of two steps each.
        for _ in range(2):
            value, state = dwa.loss(epoch_losses, {}, state, _ctx(step, steps_per_epoch=2))
            assert float(value) == pytest.approx(float(epoch_losses.sum()))  # w = 1 in epochs 1-2.
            step += 1
    value, state = dwa.loss(jnp.asarray([1.0, 1.0]), {}, state, _ctx(step, steps_per_epoch=2))
    r = np.array([0.5 / 1.0, 0.9 / 1.0])
    w = 2 * np.exp(r / 2.0) / np.exp(r / 2.0).sum()
    assert float(value) == pytest.approx(w.sum(), rel=1e-5)  # Losses 1: the value is Σw = T.
    value, _ = dwa.loss(jnp.asarray([1.0, 0.0]), {}, state, _ctx(step + 1, steps_per_epoch=2))
    assert float(value) == pytest.approx(w[0], rel=1e-5)


def test_rlw_weights_on_simplex_and_random():
    rlw = strategies.get("rlw")
    values = {float(rlw.loss(jnp.asarray([1.0, 0.0, 0.0]), {}, {},
                             strategies.context(jax.random.key(k), 0, 1, jnp.ones(3), strategies.default_config("rlw")))[0])
              for k in range(5)}
    assert len(values) == 5 and all(0 < v < 1 for v in values)


def test_gradnorm_update_by_hand():
    gn = strategies.get("gradnorm")
    state = gn.init_state(2, 2)
    g = jnp.asarray([[3.0, 0.0], [0.0, 1.0]])
    losses = jnp.asarray([1.0, 1.0])
    d, head_w, state = gn.aggregate(g, losses, state, _ctx(strategy="gradnorm", alpha=1.5, lr=0.1))
    np.testing.assert_allclose(d, [3.0, 1.0]) and np.testing.assert_allclose(head_w, [1.0, 1.0])
    # G = (3, 1), mean 2, r = (1, 1): target 2; ∂L/∂w = sign(G - 2)·‖g‖ = (3, -1); w = (0.7, 1.1)
    # renormalised to sum 2.
    np.testing.assert_allclose(state["weights"], np.array([0.7, 1.1]) * 2 / 1.8, rtol=1e-6)
    np.testing.assert_allclose(state["initial"], [1.0, 1.0])
    # Next step: task 0's loss fell to half, so r_0 < 1 and its target falls.
    _, _, state2 = gn.aggregate(g, jnp.asarray([0.5, 1.0]), state, _ctx(strategy="gradnorm", alpha=1.5, lr=0.1))
    w = np.array([0.7, 1.1]) * 2 / 1.8
    gnorm = w * [3.0, 1.0]
    ratio = np.array([0.5, 1.0]) / 0.75
    target = gnorm.mean() * ratio ** 1.5
    expected = w - 0.1 * np.sign(gnorm - target) * [3.0, 1.0]
    np.testing.assert_allclose(state2["weights"], expected * 2 / expected.sum(), rtol=1e-5)


def test_static_and_equal():
    losses = jnp.asarray([1.0, 2.0, 4.0])
    assert float(strategies.get("equal").loss(losses, {}, {}, _ctx())[0]) == 7.0
    ctx = _ctx(weights=(2.0, 0.0, 0.5))
    assert float(strategies.get("static").loss(losses, {}, {}, ctx)[0]) == 4.0


def test_conflict_stats():
    stats = diagnostics.conflict_stats(jnp.asarray([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0]]))
    np.testing.assert_allclose(stats["cos"], [[1, -1, 0], [-1, 1, 0], [0, 0, 1]], atol=1e-6)
    np.testing.assert_allclose(stats["norm_ratio"], np.array([1, 1, 2]) / (4 / 3), rtol=1e-6)


def test_mgda_ub_weights_from_the_representation_gram():
    """MGDA-UB solves the same min-norm problem on the representation's Gram matrix (times T)."""
    z = np.random.default_rng(2).normal(size=(3, 40)).astype(np.float32)
    m = jnp.asarray(z @ z.T)
    w = np.asarray(strategies.STRATEGIES["mgda_ub"].weighting(m))
    np.testing.assert_allclose(w, 3 * np.asarray(solvers.min_norm_weights_exact(m)), rtol=1e-6)
    assert w.sum() == pytest.approx(3.0, rel=1e-5) and np.all(w >= 0)
    same = jnp.ones((2, 2))  # Identical representation gradients: equal weights, i.e. plain summation.
    np.testing.assert_allclose(strategies.STRATEGIES["mgda_ub"].weighting(same), [1.0, 1.0], rtol=1e-5)
