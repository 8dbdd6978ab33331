"""UPGrad (Quinton & Rey 2024, "Jacobian descent for multi-objective optimization", Def. 3; as in
TorchJD)."""

import jax
import jax.numpy as jnp

from mtljax.mtl.base import aggregator, register, stateless
from mtljax.mtl.solvers import box_qp_exact, gram


def upgrad_weights(m: jnp.ndarray) -> jnp.ndarray:
    """The mean over tasks i of argmin_{v ≥ e_i} vᵀMv, i.e. of the projections of each g_i onto the
    dual cone of the rows of G."""
    t = m.shape[0]
    return jnp.mean(jax.vmap(lambda e: box_qp_exact(m, e))(jnp.eye(t, dtype=m.dtype)), axis=0)


def upgrad(g: jnp.ndarray) -> jnp.ndarray:
    """d = (1/T) Σ_i π(g_i), π the projection onto the dual cone {x : g_j·x ≥ 0 ∀j}; scaled by T, so
    that non-conflicting gradients give their sum."""
    return g.shape[0] * (upgrad_weights(gram(g)) @ g)


register("upgrad", aggregator(stateless(upgrad), weighting=lambda m: m.shape[0] * upgrad_weights(m)))
