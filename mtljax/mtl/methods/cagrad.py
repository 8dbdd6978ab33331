"""CAGrad (Liu et al. 2021, "Conflict-averse gradient descent for multi-task learning", Eq. 4 and
the authors' code)."""

import jax
import jax.numpy as jnp

from mtljax.mtl.base import aggregator, register, stateless
from mtljax.mtl.solvers import gram
from mtljax.registry import Option


def coefficients(m: jnp.ndarray, c: float = 0.4, steps: int = 21) -> jnp.ndarray:
    """With g₀ the mean gradient, w ∈ Δ minimising g_wᵀg₀ + c‖g₀‖·‖g_w‖ (w = softmax(z), 21 SGD
    steps, lr 25, momentum 0.5, on the Gramian normalised by the mean gradient norm, as the code
    does); returns the coefficients of d = (g₀ + c‖g₀‖/‖g_w‖ · g_w) / (1 + c²) on the rows of G."""
    t = m.shape[0]
    scale = jnp.mean(jnp.sqrt(jnp.diag(m) + 1e-4))
    m = m / scale**2
    mg = jnp.mean(m, axis=1)  # G·g₀ per task, normalised.
    cc = jnp.sqrt(jnp.mean(mg) + 1e-4) * c  # c·‖g₀‖.

    def objective(z):
        w = jax.nn.softmax(z)
        return w @ mg + cc * jnp.sqrt(w @ m @ w + 1e-4)

    def body(_, carry):
        z, velocity = carry
        velocity = 0.5 * velocity + jax.grad(objective)(z)
        return z - 25.0 * velocity, velocity

    z, _ = jax.lax.fori_loop(0, steps, body, (jnp.zeros(t, m.dtype), jnp.zeros(t, m.dtype)))
    w = jax.nn.softmax(z)
    lam = cc / (jnp.sqrt(w @ m @ w + 1e-4) + 1e-4)
    return (1.0 / t + lam * w) / (1 + c**2)


def cagrad(g: jnp.ndarray, c: float = 0.4, steps: int = 21) -> jnp.ndarray:
    """d = T·(coefficientsᵀG): a sum, like the other aggregators."""
    return g.shape[0] * (coefficients(gram(g), c, steps) @ g)


register("cagrad", aggregator(stateless(cagrad), weighting=lambda m, c: m.shape[0] * coefficients(m, c)),
         {"c": Option(0.4, "CAGrad's c", minimum=0)})
