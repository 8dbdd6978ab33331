"""The Gramian engine: the Gramian without the Jacobian equals J·Jᵀ, and every Gramian method's
gradient on that path equals the Jacobian path's to float tolerance."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtljax import mtl
from mtljax.mtl import gradients, gramian
from mtljax.mtl.solvers import gram
from test_bilevel import _problem

GRAMIAN_METHODS = ["upgrad", "mgda", "dualproj", "nash_mtl", "cagrad", "aligned_mtl", "fairgrad", "krum", "pcd",
                   "conicgrad", "cr_mogm"]


def test_every_gramian_method_is_supported():
    assert sorted(n for n in mtl.methods() if gramian.supports(mtl.method(n))) == sorted(GRAMIAN_METHODS)


def test_the_gramian_without_the_jacobian_is_j_jt():
    objective, params, batch, _ = _problem(jnp.float32, t=4)
    loss_fn = lambda p: objective.losses(p, batch, None)[0]
    _, pull = jax.vjp(loss_fn, params)
    m, own = gramian.gramian_of(pull, params, ("backbone",), 4)
    jac = jax.jacrev(loss_fn)(params)["backbone"].reshape(4, -1)
    np.testing.assert_allclose(np.asarray(m), np.asarray(gram(jac)), rtol=1e-5, atol=1e-6)
    heads = jax.grad(lambda p: jnp.sum(loss_fn(p)))(params)["heads"]
    np.testing.assert_allclose(np.asarray(own["heads"]), np.asarray(heads), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", GRAMIAN_METHODS)
def test_both_paths_give_the_same_gradient(name):
    objective, params, batch, _ = _problem(jnp.float32, t=3, seed=4)
    options = {"primary": 0} if name == "pcd" else {}
    method = mtl.method(name)
    ctx = mtl.context(name, num_tasks=3, **options)
    state = method.init_state(3, 20)
    jacobian = gradients.aggregated(method, objective, params, state, batch, jax.random.key(0), ctx)
    free = gramian.gramian_aggregated(method, objective, params, state, batch, jax.random.key(0), ctx)
    for k in params:
        scale = np.abs(np.asarray(jacobian.grads[k])).max()
        np.testing.assert_allclose(np.asarray(free.grads[k]), np.asarray(jacobian.grads[k]), atol=2e-4 * scale, rtol=0)
    np.testing.assert_allclose(np.asarray(free.losses), np.asarray(jacobian.losses), rtol=1e-6)
