"""The fast ops equal their plain Flax/XLA counterparts, values and gradients."""

from __future__ import annotations

import flax.linen as nn
import jax
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
