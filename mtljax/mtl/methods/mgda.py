"""MGDA (Sener & Koltun 2018, "Multi-task learning as multi-objective optimization", Eq. 3;
Désidéri 2012): the min-norm point of the convex hull of the task gradients."""

import jax.numpy as jnp

from mtljax.mtl.base import aggregator, register, stateless
from mtljax.mtl.solvers import gram, min_norm_weights, min_norm_weights_exact


def weights(m: jnp.ndarray) -> jnp.ndarray:
    """w* = argmin_{w∈Δ} wᵀMw, solved exactly for T ≤ 10 (else by Frank-Wolfe)."""
    return min_norm_weights_exact(m) if m.shape[0] <= 10 else min_norm_weights(m)


def mgda(g: jnp.ndarray) -> jnp.ndarray:
    """d = T·w*ᵀG: scaled by T, so that identical gradients give their sum, as the other
    aggregators do. (MGDA-UB applies this to the gradients of the shared representation:
    methods/mgda_ub.py.)"""
    return g.shape[0] * (weights(gram(g)) @ g)


register("mgda", aggregator(stateless(mgda), weighting=lambda m: m.shape[0] * weights(m)))
