"""Geometric loss strategy (Chennupati et al. 2019, "MultiNet++: multi-stream feature aggregation
and geometric loss strategy for multi-task learning", Eq. 2)."""

import jax.numpy as jnp

from mtljax.mtl.base import loss_weighting, register
from mtljax.mtl.solvers import EPS


def gls(losses, params, state, ctx):
    """The geometric mean (Π_t L_t)^(1/T), times T (equal losses give the sum's gradient); its
    gradient weights task t by L_gls/(T·L_t), so a task whose loss is small is weighted up.
    Computed as exp(mean log L)."""
    return losses.shape[0] * jnp.exp(jnp.mean(jnp.log(losses + EPS))), state


register("gls", loss_weighting(gls))
