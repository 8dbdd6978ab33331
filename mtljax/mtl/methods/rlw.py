"""Random loss weighting (Lin et al. 2022, "Reasonable effectiveness of random weighting", RLW
with normal sampling)."""

import jax

from mtljax.mtl.base import loss_weighting, register, weighted


def rlw(losses, params, state, ctx):
    """w = softmax(ε), ε ~ N(0, I_T), fresh every step."""
    weights = jax.nn.softmax(jax.random.normal(ctx["rng"], losses.shape))
    return weighted(losses, weights), state


register("rlw", loss_weighting(rlw, random=True))
