"""DB-MTL (Lin et al. 2023, "Dual-balancing for multi-task learning", Alg. 1): loss-scale
balancing (the log-losses are differentiated) and gradient-magnitude balancing."""

import jax.numpy as jnp

from mtljax.mtl.base import aggregator, register, stepped
from mtljax.mtl.methods.moco import BETA_SIGMA
from mtljax.mtl.solvers import EPS
from mtljax.registry import Option


def db_mtl(g, state, step, beta: float, beta_sigma: float):
    """On the gradients of the log-losses, their moving averages ĝ_t ← β_k ĝ_t + (1−β_k) g_t
    (ĝ = g at the first step; β_k = β/(k+1)^σ), then d = max_s‖ĝ_s‖ · Σ_t ĝ_t/‖ĝ_t‖: every task's
    direction with the largest task's magnitude. Returns (d, state)."""
    b = beta / (step.astype(jnp.float32) + 1.0) ** beta_sigma
    avg = jnp.where(step == 0, g, b * state["avg"] + (1.0 - b) * g)
    norms = jnp.linalg.norm(avg, axis=1)
    return (jnp.max(norms) / (norms + EPS)) @ avg, {"avg": avg}


def log_losses(losses, params):
    """log L_t: the losses DB-MTL differentiates."""
    return jnp.log(losses + 1e-8)


register("db_mtl", aggregator(stepped(db_mtl), scale_losses=log_losses,
                              init_state=lambda t, p: {"avg": jnp.zeros((t, p))}),
         {"beta": Option(0.9, "DB-MTL's moving-average rate β", minimum=0), "beta_sigma": BETA_SIGMA})
