"""Dynamic Weight Average (Liu, Johns & Davison 2019, "End-to-end multi-task learning with
attention", Eq. 1)."""

import jax
import jax.numpy as jnp

from mtljax.mtl.base import loss_weighting, register, weighted
from mtljax.mtl.solvers import EPS
from mtljax.registry import Option


def dwa_state(t: int, p: int = 0) -> dict:
    """DWA's state: the running epoch sums, the last two epoch means and the epoch count."""
    del p
    return {"sum": jnp.zeros(t), "count": jnp.zeros(()), "last": jnp.ones(t), "before": jnp.ones(t),
            "epochs": jnp.zeros((), jnp.int32)}


def epoch_means(losses, state, ctx):
    """The state with this step's losses added; at the first step of an epoch (every
    `steps_per_epoch` steps) the finished epoch's mean moves to `last`, the one before to `before`.
    Returns (the state at the epoch boundary, the state after this step)."""
    t = losses.shape[0]
    new_epoch = (ctx["step"] > 0) & (ctx["step"] % ctx["steps_per_epoch"] == 0)
    mean = state["sum"] / jnp.maximum(state["count"], 1.0)
    state = jax.tree.map(lambda a, b: jnp.where(new_epoch, a, b),
                         {"sum": jnp.zeros(t), "count": jnp.zeros(()), "last": mean, "before": state["last"],
                          "epochs": state["epochs"] + 1}, state)
    return state, {**state, "sum": state["sum"] + jax.lax.stop_gradient(losses), "count": state["count"] + 1}


def dwa(losses, params, state, ctx):
    """w_t = T·softmax(r/τ)_t with r_t = L̄_t(e−1)/L̄_t(e−2), L̄ the epoch-mean training losses;
    w = 1 for the first two epochs. The epoch means are accumulated in the state; an epoch ends
    every `steps_per_epoch` steps."""
    t = losses.shape[0]
    state, new_state = epoch_means(losses, state, ctx)
    ratio = state["last"] / (state["before"] + EPS)
    weights = jnp.where(state["epochs"] >= 2, t * jax.nn.softmax(ratio / ctx["options"]["temperature"]), 1.0)
    return weighted(losses, jax.lax.stop_gradient(weights)), new_state


register("dwa", loss_weighting(dwa, init_state=dwa_state),
         {"temperature": Option(2.0, "DWA's temperature T", positive=True)})
