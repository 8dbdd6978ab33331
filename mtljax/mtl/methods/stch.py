"""Smooth Tchebycheff scalarisation (Lin et al. 2024, "Smooth Tchebycheff scalarization for
multi-objective optimization", Eq. 6)."""

import jax
import jax.numpy as jnp

from mtljax.mtl.base import loss_weighting, register
from mtljax.mtl.solvers import EPS
from mtljax.registry import Option


def stch(losses, params, state, ctx):
    """T·μ·log Σ_t exp(w_t·ℓ_t/μ), a smooth maximum of the weighted objectives (μ → 0: the worst
    task alone; μ → ∞: Σ_t w_t ℓ_t). As in the paper's multi-task experiments, the objectives are
    the log-losses relative to a nadir point, ℓ_t = log L_t − log N_t, N the mean training losses
    of the first `warmup_epochs` epochs, during which the plain sum Σ_t L_t is trained;
    w: `loss_weights`."""
    options = ctx["options"]
    warm = ctx["step"] < options["warmup_epochs"] * ctx["steps_per_epoch"]
    total = state["sum"] + jnp.where(warm, jax.lax.stop_gradient(losses), 0.0)
    count = state["count"] + jnp.where(warm, 1.0, 0.0)
    nadir = jnp.where(count > 0, total / jnp.maximum(count, 1.0), 1.0)  # Frozen once the warm-up ends.
    rel = ctx["weights"] * (jnp.log(losses + EPS) - jnp.log(nadir + EPS))
    smooth = losses.shape[0] * options["mu"] * jax.nn.logsumexp(rel / options["mu"])
    return jnp.where(warm, jnp.sum(losses), smooth), {"sum": total, "count": count}


def stch_state(t: int, p: int = 0) -> dict:
    """STCH's state: the sum and count of the warm-up's losses (their mean is the nadir point)."""
    del p
    return {"sum": jnp.zeros(t), "count": jnp.zeros(())}


register("stch", loss_weighting(stch, init_state=stch_state),
         {"mu": Option(1.0, "STCH's smoothing μ", positive=True),
          "warmup_epochs": Option(1, "epochs of plain summation whose mean losses are the nadir point", minimum=0)})
