"""Equal weighting: Σ_t L_t, every task's loss with weight 1."""

import jax.numpy as jnp

from mtljax.mtl.base import loss_weighting, register


def equal(losses, params, state, ctx):
    """Σ_t L_t."""
    return jnp.sum(losses), state


register("equal", loss_weighting(equal))
