"""GradNorm (Chen et al. 2018, "GradNorm: gradient normalization for adaptive loss balancing in
deep multitask networks", Eqs. 1-2)."""

import jax
import jax.numpy as jnp

from mtljax.mtl.base import aggregator, register
from mtljax.registry import Option


def gradnorm(g, losses, state, alpha: float, lr: float):
    """With G_t = w_t‖g_t‖, Ḡ their mean, r_t = L̃_t/mean(L̃) and L̃_t = L_t/L_t(0), the weights
    descend L_grad = Σ_t |G_t − Ḡ·r_t^α| (the target held constant), by SGD with learning rate
    `lr`, then are renormalised to Σw = T. d = Σ w_t g_t with the weights before the update. Here
    g_t are the gradients of all shared parameters (the paper's W is the last shared layer, a
    cheaper approximation). Returns (d, weights, state): the weights also scale each head."""
    weights = state["weights"]
    initial = jnp.where(state["started"], state["initial"], losses)
    norms = jnp.linalg.norm(g, axis=1)
    grad_norms = weights * norms
    ratio = (losses / initial) / jnp.mean(losses / initial)
    target = jax.lax.stop_gradient(jnp.mean(grad_norms) * ratio ** alpha)
    d_weights = jnp.sign(grad_norms - target) * norms  # ∂L_grad/∂w_t.
    new = jnp.maximum(weights - lr * d_weights, 1e-6)
    new = new * g.shape[0] / jnp.sum(new)
    return weights @ g, weights, {"weights": new, "initial": initial, "started": jnp.ones((), bool)}


def init_state(t: int, p: int) -> dict:
    """Weights 1; the initial losses are taken at the first step."""
    return {"weights": jnp.ones(t), "initial": jnp.zeros(t), "started": jnp.zeros((), bool)}


register("gradnorm", aggregator(lambda g, losses, state, ctx: gradnorm(g, losses, state, **ctx["options"]),
                                init_state=init_state),
         {"alpha": Option(1.5, "GradNorm's asymmetry α", minimum=0),
          "lr": Option(0.025, "learning rate of the task weights", minimum=0)})
