"""Weighted Tchebycheff scalarization (Miettinen 1999, Eq. 3.4.1; LibMOON's `tche`): the largest
of the ray-weighted losses, max_t r_t L_t, with the ideal point at 0. The ray r is the replica's
loss weights (`pareto.rays`, docs/pareto.md); without rays, the configured `loss_weights`."""

from mtljax.mtl import pareto
from mtljax.mtl.base import loss_weighting, register


def tchebycheff(losses, params, state, ctx):
    """max_t r_t L_t: only the worst ray-weighted task gets a gradient."""
    return pareto.tchebycheff(losses, ctx["weights"]), state


register("tchebycheff", loss_weighting(tchebycheff))
