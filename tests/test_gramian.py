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
    m, own = gramian.gramian_of(loss_fn, params, ("backbone",), 4)
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


def test_forward_mode_pushes_through_the_custom_vjp_layers():
    """The conv/pool layers' forward-mode twins give the Gramian the transposed pullback gives."""
    from mtljax import models
    from mtljax.models import ops

    model = models.build_model(models.default_config("cnn3", features=[4, 8, 8], dense=16), {"a": 2, "b": 3})
    x = jax.random.uniform(jax.random.key(0), (6, 28, 28, 1))
    params = model.init(jax.random.key(1), x)["params"]
    labels = {"a": jnp.arange(6) % 2, "b": jnp.arange(6) % 3}

    def losses(p, batch=None, key=None, parts=1):
        out = model.apply({"params": p}, x)
        return jnp.stack([-jnp.mean(jax.nn.log_softmax(out[t])[jnp.arange(6), labels[t]]) for t in ("a", "b")]), ({}, {})

    objective = gradients.Objective(losses, shared=("backbone",), forward=ops.forward_mode)
    loss_fn = lambda p: losses(p)[0]
    push = gramian.forward_push(objective, loss_fn, params)
    assert push is not None
    by_jvp, own = gramian.gramian_of(loss_fn, params, ("backbone",), 2, push)
    by_transpose, _ = gramian.gramian_of(loss_fn, params, ("backbone",), 2)
    np.testing.assert_allclose(np.asarray(by_jvp), np.asarray(by_transpose), rtol=2e-4, atol=1e-7)
    assert set(own) == {"head_a", "head_b"}
