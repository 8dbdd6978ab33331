"""Layers written for speed on XLA:CPU, numerically equal to their plain Flax counterparts."""

from __future__ import annotations

import jax.numpy as jnp


def max_pool_2x2(x: jnp.ndarray) -> jnp.ndarray:
    """2×2 max pooling with stride 2 (VALID: an odd last row or column is dropped), NHWC.

    Equal to `nn.max_pool(x, (2, 2), strides=(2, 2))`, written as a reshape and a max. Its gradient
    is then a comparison mask, where `reduce_window`'s is a select-and-scatter, slow on XLA:CPU.
    The gradients differ only where a window has tied maxima (this one shares the gradient among
    them, select-and-scatter gives it to one); tests compare them on inputs without ties.
    """
    n, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2, :]
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
