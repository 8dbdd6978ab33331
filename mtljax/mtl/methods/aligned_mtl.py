"""Aligned-MTL (Senushkin et al. 2023, "Independent component alignment for multi-task learning",
Alg. 1)."""

import jax.numpy as jnp

from mtljax.mtl.base import aggregator, register, stateless
from mtljax.mtl.solvers import gram


def weights(m: jnp.ndarray) -> jnp.ndarray:
    """With M = GGᵀ = VΛVᵀ, B = √λ_min · VΛ^{-½}Vᵀ makes the rows of BG orthogonal with equal norms
    √λ_min (condition number 1); d = Σ_t (BG)_t, so the weights are B's column sums. Eigenvalues
    below the numerical rank's tolerance are left out, as in the authors' code."""
    lam, v = jnp.linalg.eigh(m)
    tol = jnp.max(lam) * m.shape[0] * jnp.finfo(m.dtype).eps * 10
    keep = lam > tol
    sigma = jnp.sqrt(jnp.where(keep, lam, 1.0))
    sigma_min = jnp.min(jnp.where(keep, sigma, jnp.inf))
    b = sigma_min * (v * jnp.where(keep, 1.0 / sigma, 0.0)) @ v.T
    return jnp.sum(b, axis=0)


def aligned_mtl(g: jnp.ndarray) -> jnp.ndarray:
    """d = Σ_t (BG)_t."""
    return weights(gram(g)) @ g


register("aligned_mtl", aggregator(stateless(aligned_mtl), weighting=weights))
