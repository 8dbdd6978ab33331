"""ConFIG (Liu et al. 2024, "ConFIG: towards conflict-free training of physics informed neural
networks", Eqs. 3-4)."""

import jax.numpy as jnp

from mtljax.mtl.base import aggregator, register, stateless
from mtljax.mtl.solvers import EPS, gram


def config_direction(g: jnp.ndarray) -> jnp.ndarray:
    """With U the unit task gradients (rows g_t/‖g_t‖), the unit direction û ∝ U⁺·1 has the same
    cosine with every task gradient; its length is the sum of the projections, d = (Σ_t g_t·û)·û
    (the sum for agreeing gradients). U⁺·1 = Uᵀ(UUᵀ)⁺·1."""
    u = g / (jnp.linalg.norm(g, axis=1, keepdims=True) + EPS)
    x = jnp.linalg.pinv(gram(u), hermitian=True) @ jnp.ones(g.shape[0], g.dtype) @ u
    unit = x / (jnp.linalg.norm(x) + EPS)
    return jnp.sum(g @ unit) * unit


register("config", aggregator(stateless(config_direction)))
