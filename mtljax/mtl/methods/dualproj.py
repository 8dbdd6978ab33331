"""DualProj (Quinton & Rey 2024, "Jacobian descent for multi-objective optimization", Sec. 2; as
in TorchJD)."""

import jax.numpy as jnp

from mtljax.mtl.base import aggregator, register, stateless
from mtljax.mtl.solvers import box_qp_exact, gram


def weights(m: jnp.ndarray) -> jnp.ndarray:
    """v = argmin_{v ≥ 1/T} vᵀMv: the dual of projecting the mean gradient onto the dual cone."""
    t = m.shape[0]
    return box_qp_exact(m, jnp.full((t,), 1.0 / t, m.dtype))


def dualproj(g: jnp.ndarray) -> jnp.ndarray:
    """The mean gradient projected onto the dual cone of the rows of G,
    π(ḡ) = argmin_{d: Gd ≥ 0} ‖d − ḡ‖ = vᵀG; scaled by T (agreeing gradients give their sum)."""
    return g.shape[0] * (weights(gram(g)) @ g)


register("dualproj", aggregator(stateless(dualproj), weighting=lambda m: m.shape[0] * weights(m)))
