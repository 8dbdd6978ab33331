"""IMTL-G (Liu et al. 2021, "Towards impartial multi-task learning", Sec. 3.2)."""

import jax
import jax.numpy as jnp

from mtljax.mtl.base import aggregator, register, stateless
from mtljax.mtl.solvers import EPS


def imtl_g(g: jnp.ndarray) -> jnp.ndarray:
    """α such that d = αᵀG has equal projections on every unit gradient u_t = g_t/‖g_t‖, Σα = 1:
    α_{2:T} = g₁Uᵀ(DUᵀ)⁻¹ with D = g₁ − g_t, U = u₁ − u_t. Scaled by T, so identical gradients give
    their sum."""
    t = g.shape[0]
    if t == 1:
        return g[0]
    u = g / (jnp.linalg.norm(g, axis=1, keepdims=True) + EPS)
    d, uu = g[0] - g[1:], u[0] - u[1:]
    du = jnp.dot(d, uu.T, precision=jax.lax.Precision.HIGHEST)
    rhs = jnp.dot(g[0], uu.T, precision=jax.lax.Precision.HIGHEST)
    alpha_rest = jnp.linalg.lstsq(du.T, rhs)[0]  # Solves α DUᵀ = g₁Uᵀ; lstsq for parallel rows.
    alpha = jnp.concatenate([1 - jnp.sum(alpha_rest, keepdims=True), alpha_rest])
    return t * (alpha @ g)


register("imtl_g", aggregator(stateless(imtl_g)))
