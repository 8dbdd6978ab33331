"""Nash-MTL (Navon et al. 2022, "Multi-task learning as a bargaining game", Eq. 5)."""

import jax
import jax.numpy as jnp

from mtljax.mtl.base import aggregator, register, stateless
from mtljax.mtl.solvers import EPS, gram


def nash_weights(m: jnp.ndarray, iters: int = 50) -> jnp.ndarray:
    """The α > 0 solving (Mα)_t = 1/α_t for every t.

    They are the minimiser of φ(α) = ½αᵀMα − Σ_t log α_t over α > 0 (∇φ = Mα − 1/α), a strictly
    convex, self-concordant function, so damped Newton steps α ← α − H⁻¹∇φ / (1 + λ), with
    H = M + diag(1/α²) and λ the Newton decrement, stay inside α > 0 and converge from any start
    (Nesterov 2004, Sec. 4.1.5); started at α = 1/√diag(M). (Newton on log α could leave the
    region where Mα > 0 when gradients conflict, and return NaN.)"""
    t = m.shape[0]
    m = m + 1e-8 * jnp.trace(m) / t * jnp.eye(t, dtype=m.dtype)

    def body(_, alpha):
        grad = m @ alpha - 1.0 / alpha
        step = jnp.linalg.solve(m + jnp.diag(1.0 / alpha**2), grad)
        decrement = jnp.sqrt(jnp.maximum(grad @ step, 0.0))
        return alpha - step / (1.0 + decrement)

    return jax.lax.fori_loop(0, iters, body, 1.0 / jnp.sqrt(jnp.diag(m) + EPS))


def nash_mtl(g: jnp.ndarray) -> jnp.ndarray:
    """d = αᵀG with GGᵀα = 1/α, the Nash bargaining solution (each task's utility d·g_t = 1/α_t).
    Solved exactly here, where the authors approximate it by a few convex-concave steps with cvxpy."""
    return nash_weights(gram(g)) @ g


register("nash_mtl", aggregator(stateless(nash_mtl), weighting=nash_weights))
