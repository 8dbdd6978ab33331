"""An MLP whose forward and backward passes are written by hand in jax.numpy (no autodiff).

The backward pass is attached with `jax.custom_vjp`, so the ordinary train step, which calls
`jax.grad`, runs this hand-written backpropagation; tests check it against autodiff of the same
forward pass. With `optimizer.name = "sgd"` and momentum 0 this is the NumPy project's plain
gradient descent.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

LEAK = 0.01  # leaky_relu slope, as torch.nn.LeakyReLU and jax.nn.leaky_relu.


def _act(z: jnp.ndarray, activation: str) -> jnp.ndarray:
    return jnp.where(z > 0, z, LEAK * z) if activation == "leaky_relu" else jnp.maximum(z, 0)


def _act_grad(z: jnp.ndarray, activation: str) -> jnp.ndarray:
    return jnp.where(z > 0, 1.0, LEAK if activation == "leaky_relu" else 0.0)


def mlp_forward(x: jnp.ndarray, weights: Sequence[tuple[jnp.ndarray, jnp.ndarray]], activation: str) -> jnp.ndarray:
    """h_0 = x; h_l = act(h_{l-1} W_l + b_l) for each (W_l, b_l) in `weights`."""
    return _forward_with_cache(x, weights, activation)[0]


def _forward_with_cache(x, weights, activation):
    inputs, pre = [], []
    h = x
    for w, b in weights:
        inputs.append(h)
        z = h @ w + b
        pre.append(z)
        h = _act(z, activation)
    return h, (inputs, pre)


def mlp_backward(weights, cache, dh: jnp.ndarray, activation: str):
    """Backpropagation by hand: returns (dx, [(dW_l, db_l)]) for the output cotangent `dh`."""
    inputs, pre = cache
    grads = []
    for (w, _), h_in, z in zip(reversed(weights), reversed(inputs), reversed(pre)):
        dz = dh * _act_grad(z, activation)  # through the activation
        grads.append((h_in.T @ dz, dz.sum(axis=0)))  # dL/dW = h_inᵀ·dz, dL/db = Σ_batch dz
        dh = dz @ w.T  # to the layer's input
    return dh, grads[::-1]


def make_hand_mlp(activation: str):
    """`f(x, weights)`, the MLP forward pass whose VJP is `mlp_backward`."""

    @jax.custom_vjp
    def f(x, weights):
        return mlp_forward(x, weights, activation)

    def fwd(x, weights):
        h, cache = _forward_with_cache(x, weights, activation)
        return h, (weights, cache)

    def bwd(residuals, dh):
        weights, cache = residuals
        dx, grads = mlp_backward(weights, cache, dh, activation)
        return dx, [tuple(g) for g in grads]

    f.defvjp(fwd, bwd)
    return f


class HandMLP(nn.Module):
    """Flatten, then hidden layers of widths `features`, with hand-written backpropagation.

    Attributes:
      features: hidden widths (the NumPy project: [128]; the two-digit MLP: [64, 64]).
      activation: "relu" or "leaky_relu".
    """

    features: Sequence[int] = (128,)
    activation: str = "leaky_relu"

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        x = x.reshape(x.shape[0], -1)
        weights, width = [], x.shape[-1]
        for i, out in enumerate(self.features):
            w = self.param(f"w{i}", nn.initializers.lecun_normal(), (width, out))
            b = self.param(f"b{i}", nn.initializers.zeros_init(), (out,))
            weights.append((w, b))
            width = out
        return make_hand_mlp(self.activation)(x, weights)
