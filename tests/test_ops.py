"""The fast ops equal their plain Flax/XLA counterparts, values and gradients."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.test_util
import jax.numpy as jnp
import numpy as np
import pytest

from mtljax import ops


@pytest.mark.parametrize("shape", [(2, 26, 26, 32), (2, 11, 11, 64), (3, 13, 13, 8), (1, 5, 5, 3), (2, 28, 28, 1)])
def test_max_pool_equals_reduce_window(shape):
    # Distinct values: no ties, so both gradients are defined the same way.
    x = jnp.asarray(np.random.default_rng(0).permutation(np.prod(shape)).reshape(shape), jnp.float32)
    ref = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))
    np.testing.assert_array_equal(ops.max_pool_2x2(x), ref(x))
    cotangent = jnp.asarray(np.random.default_rng(1).normal(size=ref(x).shape), jnp.float32)
    grad = jax.vjp(ops.max_pool_2x2, x)[1](cotangent)[0]
    np.testing.assert_array_equal(grad, jax.vjp(ref, x)[1](cotangent)[0])


CONV_SHAPES = [(2, 28, 28, 1, 32), (2, 13, 13, 32, 64), (2, 5, 5, 64, 64), (3, 12, 12, 3, 8), (1, 7, 9, 4, 5)]


@pytest.mark.parametrize("n,h,w,c,f", CONV_SHAPES)
def test_matmul_conv_equals_xla_conv(n, h, w, c, f):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(n, h, w, c)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(3, 3, c, f)), jnp.float32)
    np.testing.assert_allclose(ops.conv3x3_matmul(x, kernel), ops.conv3x3_xla(x, kernel), rtol=1e-5, atol=1e-4)
    dy = jnp.asarray(rng.normal(size=(n, h - 2, w - 2, f)), jnp.float32)
    got = jax.vjp(ops.conv3x3_matmul, x, kernel)[1](dy)
    want = jax.vjp(ops.conv3x3_xla, x, kernel)[1](dy)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("n,h,w,c,f", CONV_SHAPES[:3])
def test_matmul_conv_check_grads(n, h, w, c, f):
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(n, h, w, c)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(3, 3, c, f)) / np.sqrt(9 * c), jnp.float32)
    jax.test_util.check_grads(ops.conv3x3_matmul, (x, kernel), order=1, modes=["rev"], atol=5e-2, rtol=5e-2)


@pytest.mark.parametrize("padding", ["VALID", "SAME"])
def test_conv_module_matches_flax_conv(padding):
    x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 10, 10, 3)), jnp.float32)
    ours = ops.Conv(8, padding=padding, impl="matmul")
    theirs = nn.Conv(8, (3, 3), padding=padding)
    params = theirs.init(jax.random.key(0), x)
    assert jax.tree.map(jnp.shape, ours.init(jax.random.key(0), x)) == jax.tree.map(jnp.shape, params)
    np.testing.assert_allclose(ours.apply(params, x), theirs.apply(params, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("features,channels", [([4, 8, 8], 1), ([32, 64, 64], 1), ([8, 16], 3)])
def test_whole_model_gradients_match_xla_under_jit(features, channels):
    """The custom convs inside a jitted model gradient: equal to XLA's, and finite."""
    from mtljax import models

    x = jnp.asarray(np.random.default_rng(3).random((50, 28, 28, channels)), jnp.float32)
    grads = []
    for impl in ("xla", "matmul"):
        model = models.build_model({**models.MODEL_DEFAULTS, "features": features, "dense": 16,
                                    "conv_impl": impl}, {"digit": 10})
        params = model.init(jax.random.key(0), x[:1])["params"]
        loss = lambda p: jnp.sum(jax.nn.log_softmax(model.apply({"params": p}, x)["digit"])[:, 3])
        grads.append(jax.jit(jax.grad(loss))(params))
    for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1])):
        assert np.isfinite(np.asarray(b)).all()
        np.testing.assert_allclose(b, a, rtol=2e-3, atol=2e-3)


def test_max_pool_gradient_with_ties_equals_select_and_scatter():
    # ReLU outputs: many windows of equal zeros. The gradient goes to the first maximum, as XLA's.
    x = jnp.maximum(jnp.asarray(np.random.default_rng(4).integers(-3, 3, (2, 9, 9, 3)), jnp.float32), 0)
    ref = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))
    dy = jnp.asarray(np.random.default_rng(5).normal(size=ref(x).shape), jnp.float32)
    np.testing.assert_array_equal(jax.vjp(ops.max_pool_2x2, x)[1](dy)[0], jax.vjp(ref, x)[1](dy)[0])
