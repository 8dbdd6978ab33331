"""Uncertainty weighting (Kendall, Gal & Cipolla 2018, "Multi-task learning using uncertainty to
weigh losses", Eq. 7, in LibMTL's form)."""

import jax.numpy as jnp

from mtljax.mtl.base import loss_weighting, register


def uncertainty(losses, params, state, ctx):
    """With learnable s_t = log σ_t², L = Σ_t ½·exp(−s_t)·L_t + ½·s_t. The s_t start at 0 (all
    weights ½) and are trained by the same optimizer."""
    s = params["log_var"]
    return jnp.sum(0.5 * jnp.exp(-s) * losses + 0.5 * s), state


register("uw", loss_weighting(uncertainty, init_params=lambda t: {"log_var": jnp.zeros(t)}))
