"""FAMO (Liu et al. 2023, "FAMO: fast adaptive multitask optimization", Eq. 7 and Alg. 1)."""

import jax
import jax.numpy as jnp

from mtljax.mtl.base import loss_weighting, register, weighted
from mtljax.mtl.solvers import EPS
from mtljax.registry import Option


def famo(losses, params, state, ctx):
    """The update Σ_t c·z_t/L_t ∇L_t with z = softmax(ξ) and c = 1/Σ_t(z_t/L_t), i.e. fixed
    weights w_t = T·c·z_t/L_t (Σw = T) on the losses; ξ is updated after the step from the losses
    it produced (`famo_after_update`)."""
    z = jax.nn.softmax(state["logits"])
    ratio = z / (losses + EPS)
    weights = jax.lax.stop_gradient(losses.shape[0] * ratio / jnp.sum(ratio))
    return weighted(losses, weights), state


def famo_after_update(state, losses, new_losses, ctx):
    """With δ_t = log L_t − log L_t⁺ (the improvement the update brought, L⁺ the losses after it on
    the same batch), ξ ← ξ − β(J_zᵀδ + γξ), J_zᵀδ = z⊙(δ − zᵀδ): the tasks that improved most lose
    weight. β: `lr`, γ: `decay`."""
    xi = state["logits"]
    z = jax.nn.softmax(xi)
    delta = jnp.log(losses + EPS) - jnp.log(new_losses + EPS)
    grad = z * (delta - z @ delta)
    options = ctx["options"]
    return {"logits": xi - options["lr"] * (grad + options["decay"] * xi)}


register("famo", loss_weighting(famo, init_state=lambda t, p: {"logits": jnp.zeros(t)},
                                after_update=famo_after_update),
         {"lr": Option(0.025, "FAMO's step size β of the task logits", positive=True),
          "decay": Option(0.001, "FAMO's weight decay γ of the task logits", minimum=0)})
