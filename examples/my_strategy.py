"""A new MTL strategy in one file: loss weights from a softmax of the task losses ("hardest first").

w = T · softmax(L / τ), held constant in the gradient (stop_gradient), so the task with the largest
loss gets the largest weight; τ -> ∞ gives equal weights. A loss-weighting strategy maps the
per-task mean losses to one scalar; its options (here τ) live under `mtl.<name>` in the config:
`mtl: {"strategy": "hardest_first", "hardest_first": {"temperature": 2.0}}`.
"""

import jax
import jax.numpy as jnp

from mtljax.mtl.base import loss_weighting, register
from mtljax.registry import Option


def hardest_first(losses, params, state, ctx):
    """Σ_t w_t L_t with w = T·softmax(L/τ) (constant); `ctx["options"]` holds this strategy's options."""
    weights = losses.shape[0] * jax.nn.softmax(losses / ctx["options"]["temperature"])
    return jnp.sum(jax.lax.stop_gradient(weights) * losses), state


register("hardest_first", loss_weighting(hardest_first),
         {"temperature": Option(1.0, "softmax temperature τ", positive=True)})
