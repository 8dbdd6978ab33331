"""Auto-Lambda, MOML and FORUM: the look-ahead hypergradient against finite differences, MOML's
common descent direction and FORUM's QP against SciPy, on a small model written here."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize

from mtljax import mtl
from mtljax.mtl import bilevel
from mtljax.mtl.gradients import Objective
from mtljax.mtl.methods import auto_lambda, forum


def _problem(dtype, t=3, seed=0):
    """A two-layer tanh model with T regression heads: (objective, params, train batch, val batch)."""
    rng = np.random.default_rng(seed)
    params = {"backbone": jnp.asarray(rng.normal(size=(4, 5)) * 0.5, dtype),
              "heads": jnp.asarray(rng.normal(size=(5, t)) * 0.5, dtype)}

    def losses(p, batch, key, parts=1):
        out = jnp.tanh(batch["image"] @ p["backbone"]) @ p["heads"]
        return jnp.mean((out - batch["y"]) ** 2, axis=0), ({}, {})

    make = lambda n: {"image": jnp.asarray(rng.normal(size=(n, 4)), dtype), "y": jnp.asarray(rng.normal(size=(n, t)), dtype)}
    return Objective(losses, shared=("backbone",)), params, make(8), make(6)


def test_auto_lambda_hypergradient_matches_finite_differences():
    with jax.enable_x64(True):
        objective, params, batch, look = _problem(jnp.float64)
        key, w, lr = jax.random.key(0), jnp.asarray([1.0, 0.5, 2.0]), 0.3
        grad = np.asarray(auto_lambda.hypergradient(objective, params, batch, look, key, w, lr))
        total = lambda w: float(jnp.sum(bilevel.lookahead_losses(objective, params, batch, look, key, w, lr)))
        eps = 1e-6
        numeric = [(total(w.at[i].add(eps)) - total(w.at[i].add(-eps))) / (2 * eps) for i in range(3)]
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)
        assert np.abs(grad).max() > 1e-4  # Not trivially zero.


def test_auto_lambda_steps_its_weights_by_adam_on_that_gradient():
    objective, params, batch, look = _problem(jnp.float32)
    method = mtl.method("auto_lambda")
    ctx = {"options": mtl.method_options("auto_lambda", lr=0.01, inner_lr=0.3), "lookahead": look}
    w, state = method.lookahead(objective, params, method.init_state(3, 0), batch, look, jax.random.key(0), ctx)
    grad = auto_lambda.hypergradient(objective, params, batch, look, jax.random.key(0), jnp.ones(3), 0.3)
    # Adam's first step moves every weight by lr against the sign of its gradient.
    np.testing.assert_allclose(np.asarray(w), 1.0 - 0.01 * np.sign(np.asarray(grad)), rtol=1e-4)


def test_moml_steps_along_the_min_norm_combination_of_the_hypergradients():
    objective, params, batch, look = _problem(jnp.float32, seed=1)
    method = mtl.method("moml")
    ctx = {"options": mtl.method_options("moml", lr=0.01, inner_lr=0.3)}
    state = method.init_state(3, 0)
    w, new = method.lookahead(objective, params, state, batch, look, jax.random.key(0), ctx)
    h = np.asarray(jax.jacrev(lambda z: bilevel.lookahead_losses(objective, params, batch, look, jax.random.key(0),
                                                                  3 * jax.nn.softmax(z), 0.3))(jnp.zeros(3)), np.float64)
    res = minimize(lambda g: np.sum((g @ h) ** 2), np.full(3, 1 / 3), method="SLSQP", bounds=[(0, 1)] * 3,
                   constraints=[{"type": "eq", "fun": lambda g: g.sum() - 1}], options={"ftol": 1e-15})
    direction = res.x @ h
    np.testing.assert_allclose(np.asarray(new["logits"]), -0.01 * np.sign(direction), atol=2e-4)
    np.testing.assert_allclose(np.asarray(w).sum(), 3.0, rtol=1e-5)


def test_forum_direction_solves_its_qp_and_keeps_the_constraint():
    rng = np.random.default_rng(2)
    for _ in range(8):
        t = int(rng.integers(2, 5))
        upper = rng.normal(size=(t, 6)).astype(np.float32)
        gq = rng.normal(size=6).astype(np.float32)
        gamma, mu = map(np.asarray, forum.forum_direction(jnp.asarray(upper), jnp.asarray(gq), 0.1))
        rows = np.concatenate([upper, gq[None]]).astype(np.float64)
        phi = 0.1 * gq @ gq
        dual = lambda x: 0.5 * np.sum((x @ rows) ** 2) - x[t] * phi
        res = minimize(dual, np.r_[np.full(t, 1 / t), 0.0], method="SLSQP", bounds=[(0, None)] * (t + 1),
                       constraints=[{"type": "eq", "fun": lambda x: x[:t].sum() - 1}], options={"ftol": 1e-15})
        ours = np.r_[gamma, mu]
        assert dual(ours) <= res.fun + 1e-5 * (1 + abs(res.fun))
        d = ours @ rows
        assert gq @ d >= phi - 1e-4 * (1 + phi)  # q decreases along −d by at least φ per unit step.


@pytest.mark.parametrize("name", ["auto_lambda", "moml", "forum"])
def test_a_bilevel_method_without_validation_data_is_refused(name):
    with pytest.raises(ValueError, match="look-ahead step on validation data"):
        mtl.aggregate(name, jnp.ones((2, 3)))
    objective, params, batch, _ = _problem(jnp.float32)
    method = mtl.method(name)
    ctx = {**mtl.context(name, num_tasks=3), "lookahead": None}
    with pytest.raises(ValueError, match="look-ahead batch"):
        method.gradient(objective, params, method.init_state(3, 0), batch, jax.random.key(0), ctx)
