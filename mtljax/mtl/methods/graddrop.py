"""GradDrop (Chen et al. 2020, "Just pick a sign: optimizing deep multitask models with gradient
sign dropout", Eqs. 1-3)."""

import jax
import jax.numpy as jnp

from mtljax.mtl.base import aggregator, drawing, register
from mtljax.mtl.solvers import EPS
from mtljax.registry import Option


def graddrop(g: jnp.ndarray, rng: jax.Array, leak: float = 0.0) -> jnp.ndarray:
    """Per coordinate, the positive sign purity P = ½(1 + Σ_t g_t / Σ_t |g_t|) and one
    U ~ Uniform(0, 1); task t keeps its entry where (P > U and g_t > 0) or (P < U and g_t < 0), so
    each coordinate keeps one sign; d = Σ_t M_t g_t. `leak` ∈ [0, 1] keeps that fraction of every
    dropped entry (1: the plain sum). The paper drops at a layer's activations; here it acts on
    the rows it is given (parameters, or the representation with `mtl.rep_grad`)."""
    purity = 0.5 * (1.0 + jnp.sum(g, axis=0) / (jnp.sum(jnp.abs(g), axis=0) + EPS))
    u = jax.random.uniform(rng, purity.shape, g.dtype)
    keep = ((purity > u) & (g > 0)) | ((purity < u) & (g < 0))
    return jnp.sum((leak + (1.0 - leak) * keep) * g, axis=0)


register("graddrop", aggregator(drawing(graddrop), random=True),
         {"leak": Option(0.0, "fraction of each dropped entry kept (1: the plain sum)", minimum=0)})
