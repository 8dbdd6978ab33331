"""Gradient Vaccine (Wang et al. 2021, "Gradient vaccine: investigating and improving multi-task
optimization in massively multilingual models", Alg. 1 and Eq. 3)."""

import jax
import jax.numpy as jnp

from mtljax.mtl.base import aggregator, ones, register
from mtljax.mtl.solvers import EPS, dot
from mtljax.registry import Option


def gradvac(g, targets, rng, beta: float):
    """For each task i, in a random order over the other tasks j, where the cosine φ_ij of the
    current g_i with g_j is below its target φ̂_ij,
    g_i ← g_i + ‖g_i‖(φ̂_ij√(1−φ_ij²) − φ_ij√(1−φ̂_ij²)) / (‖g_j‖√(1−φ̂_ij²)) · g_j, which sets their
    cosine to φ̂_ij; then φ̂_ij ← (1−β)φ̂_ij + βφ_ij. d = Σ_i g_i. With targets 0 the step is PCGrad's
    projection. One target per task pair (the paper's whole-model granularity); they start at 0.
    Returns (d, new targets)."""
    t = g.shape[0]
    norms = jnp.linalg.norm(g, axis=1)

    def one(i, key):
        order = jax.random.permutation(key, t)

        def body(k, carry):
            gi, phis = carry
            j = order[k]
            phi = dot(gi, g[j]) / (jnp.linalg.norm(gi) * norms[j] + EPS)
            goal = targets[i, j]
            root = jnp.sqrt(jnp.maximum(1.0 - goal**2, 0.0))
            coef = jnp.linalg.norm(gi) * (goal * jnp.sqrt(jnp.maximum(1.0 - phi**2, 0.0)) - phi * root) \
                / (norms[j] * root + EPS)
            gi = gi + jnp.where((j != i) & (phi < goal), coef, 0.0) * g[j]
            return gi, phis.at[j].set(jnp.where(j != i, phi, phis[j]))

        return jax.lax.fori_loop(0, t, body, (g[i], targets[i]))

    rows, phis = jax.vmap(one)(jnp.arange(t), jax.random.split(rng, t))
    return jnp.sum(rows, axis=0), (1.0 - beta) * targets + beta * phis


def _aggregate(g, losses, state, ctx):
    d, targets = gradvac(g, state["targets"], ctx["rng"], ctx["options"]["beta"])
    return d, ones(g), {"targets": targets}


register("gradvac", aggregator(_aggregate, random=True, init_state=lambda t, p: {"targets": jnp.zeros((t, t))}),
         {"beta": Option(0.01, "GradVac's EMA rate β of the cosine targets", minimum=0)})
