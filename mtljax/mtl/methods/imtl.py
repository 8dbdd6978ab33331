"""IMTL (Liu et al. 2021, "Towards impartial multi-task learning"): IMTL-L's learnable loss scales
(Sec. 3.1) with IMTL-G's aggregation of the scaled losses' gradients (Sec. 3.2)."""

import jax.numpy as jnp

from mtljax.mtl.base import aggregator, register, stateless
from mtljax.mtl.methods.imtl_g import imtl_g


def imtl_scale(losses, params):
    """Each task's loss scaled to e^s_t·L_t − s_t, s_t learnable (trained by the same optimizer on
    this loss: it drives e^s_t·L_t towards 1)."""
    s = params["loss_scale"]
    return jnp.exp(s) * losses - s


register("imtl", aggregator(stateless(imtl_g), scale_losses=imtl_scale,
                            init_params=lambda t: {"loss_scale": jnp.zeros(t)}))
