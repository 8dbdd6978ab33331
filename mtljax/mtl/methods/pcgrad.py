"""PCGrad (Yu et al. 2020, "Gradient surgery for multi-task learning", Alg. 1)."""

import jax
import jax.numpy as jnp

from mtljax.mtl.base import aggregator, drawing, register
from mtljax.mtl.solvers import EPS


def pcgrad(g: jnp.ndarray, rng: jax.Array) -> jnp.ndarray:
    """For each task i, in a random order over the other tasks j,
    g_i ← g_i − min(0, g_i·g_j)/‖g_j‖² · g_j (projecting away the conflicting component); d = Σ_i g_i.
    The projections use the original g_j, as in the paper and its code."""
    t = g.shape[0]
    norms2 = jnp.sum(g * g, axis=1)

    def project_one(i, key):
        order = jax.random.permutation(key, t)

        def body(k, gi):
            j = order[k]
            dot = jnp.dot(gi, g[j])
            coef = jnp.where((j != i) & (dot < 0), dot / (norms2[j] + EPS), 0.0)
            return gi - coef * g[j]

        return jax.lax.fori_loop(0, t, body, g[i])

    return jnp.sum(jax.vmap(project_one)(jnp.arange(t), jax.random.split(rng, t)), axis=0)


register("pcgrad", aggregator(drawing(pcgrad), random=True))
