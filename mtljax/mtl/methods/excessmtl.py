"""ExcessMTL (He et al. 2024, "Robust multi-task learning with excess risks", Alg. 1)."""

import jax.numpy as jnp

from mtljax.mtl.base import aggregator, register
from mtljax.mtl.solvers import EPS
from mtljax.registry import Option


def excessmtl(g, state, step, lr: float):
    """Each task's excess risk estimated as g_tᵀ H_t⁻¹ g_t with the diagonal H_t = √(Σ_steps g_t²)
    (AdaGrad's accumulated squares), relative to its value at the first step; the task weights
    follow exponentiated gradient ascent on it, w_t ← w_t·exp(η·E_t/E_t(0)), renormalised to
    Σw = T (η: `lr`); d = Σ_t w_t g_t. Returns (d, weights, state): the weights also scale each
    head's gradient."""
    acc = state["acc"] + g * g
    risk = jnp.sum(g * g / jnp.sqrt(acc + 1e-7), axis=1)
    initial = jnp.where(step == 0, risk, state["initial"])
    w = state["weights"] * jnp.exp(lr * risk / (initial + EPS))
    w = g.shape[0] * w / jnp.sum(w)
    return w @ g, w, {"acc": acc, "initial": initial, "weights": w}


register("excessmtl", aggregator(
    lambda g, losses, state, ctx: excessmtl(g, state, ctx["step"], **ctx["options"]),
    init_state=lambda t, p: {"acc": jnp.zeros((t, p)), "initial": jnp.ones(t), "weights": jnp.ones(t)}),
         {"lr": Option(0.01, "ExcessMTL's step size η of the task weights", minimum=0)})
