"""FairGrad (Ban & Ji 2024, "Fair resource allocation in multi-task learning", Eq. 8)."""

import jax
import jax.numpy as jnp

from mtljax.mtl.base import aggregator, register, stateless
from mtljax.mtl.solvers import EPS, gram
from mtljax.registry import Option


def fairgrad_weights(m: jnp.ndarray, alpha: float, iters: int = 60) -> jnp.ndarray:
    """The w > 0 solving (Mw)_t = w_t^(−1/α) (α = 1 is Nash-MTL's equation).

    They minimise φ(w) = ½wᵀMw − Σ_t h(w_t) with h' = w^(−1/α) (h(w) = log w for α = 1, else
    w^(1−1/α)/(1−1/α)): strictly convex on w > 0, so Newton steps with H = M + diag(w^(−1/α−1)/α),
    damped by 1/(1 + decrement) and kept to 90 % of the way to the boundary w = 0, converge."""
    t = m.shape[0]
    m = m + 1e-8 * jnp.trace(m) / t * jnp.eye(t, dtype=m.dtype)

    def body(_, w):
        grad = m @ w - w ** (-1.0 / alpha)
        newton = jnp.linalg.solve(m + jnp.diag(w ** (-1.0 / alpha - 1.0) / alpha), grad)
        step = newton / (1.0 + jnp.sqrt(jnp.maximum(grad @ newton, 0.0)))
        room = jnp.min(jnp.where(step > 0, 0.9 * w / jnp.where(step > 0, step, 1.0), jnp.inf))
        return w - jnp.minimum(1.0, room) * step

    return jax.lax.fori_loop(0, iters, body, 1.0 / jnp.sqrt(jnp.diag(m) + EPS))


def fairgrad(g: jnp.ndarray, alpha: float = 1.0) -> jnp.ndarray:
    """d = wᵀG with GGᵀw = w^(−1/α), the α-fair allocation of the update among the tasks (each
    task's utility d·g_t = w_t^(−1/α)); solved exactly by `fairgrad_weights` where the authors use
    a least-squares solver."""
    return fairgrad_weights(gram(g), alpha) @ g


register("fairgrad", aggregator(stateless(fairgrad), weighting=fairgrad_weights),
         {"alpha": Option(1.0, "FairGrad's fairness α (1: Nash-MTL's proportional fairness)", positive=True)})
