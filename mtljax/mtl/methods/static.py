"""Static weighting: Σ_t w_t L_t with the config's `loss_weights` (tasks not named get 1)."""

from mtljax.mtl.base import loss_weighting, register, weighted_static

static = weighted_static

register("static", loss_weighting(static))
