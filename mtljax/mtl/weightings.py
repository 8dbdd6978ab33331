"""Loss weightings: pure functions of the per-task mean losses (a T vector).

Each is `loss(losses, params, state, ctx) -> (scalar, state)`: `params` are the method's own
learnable parameters (trained by the same optimizer), `state` what it carries between steps, `ctx`
the step's context (`rng`, `step`, `steps_per_epoch`, the configured loss `weights`, the method's
`options`; see `strategies.context`). The scalar is differentiated once. Weights are scaled so
that equal losses give the gradient of their sum (Σ_t w_t = T), as the aggregators do.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mtljax.mtl.aggregators import EPS


def weighted(losses: jnp.ndarray, weights: jnp.ndarray) -> jnp.ndarray:
    """Σ_t w_t L_t."""
    return jnp.sum(weights * losses)


def equal(losses, params, state, ctx):
    """Equal weights: Σ_t L_t."""
    return jnp.sum(losses), state


def static(losses, params, state, ctx):
    """Static weights: Σ_t w_t L_t with the config's `loss_weights` (default 1)."""
    return weighted(losses, ctx["weights"]), state


def uncertainty(losses, params, state, ctx):
    """Uncertainty weighting (Kendall, Gal & Cipolla 2018, Eq. 7 in LibMTL's form): with learnable
    s_t = log σ_t², L = Σ_t ½·exp(−s_t)·L_t + ½·s_t. The s_t start at 0 (all weights ½)."""
    s = params["log_var"]
    return jnp.sum(0.5 * jnp.exp(-s) * losses + 0.5 * s), state


def dwa_state(t: int, p: int = 0) -> dict:
    """DWA's state: the running epoch sums, the last two epoch means and the epoch count."""
    del p
    return {"sum": jnp.zeros(t), "count": jnp.zeros(()), "last": jnp.ones(t), "before": jnp.ones(t),
            "epochs": jnp.zeros((), jnp.int32)}


def _epoch_means(losses, state, ctx):
    """The state with this step's losses added; at the first step of an epoch (every
    `steps_per_epoch` steps) the finished epoch's mean moves to `last`, the one before to `before`."""
    t = losses.shape[0]
    new_epoch = (ctx["step"] > 0) & (ctx["step"] % ctx["steps_per_epoch"] == 0)
    mean = state["sum"] / jnp.maximum(state["count"], 1.0)
    state = jax.tree.map(lambda a, b: jnp.where(new_epoch, a, b),
                         {"sum": jnp.zeros(t), "count": jnp.zeros(()), "last": mean, "before": state["last"],
                          "epochs": state["epochs"] + 1}, state)
    return state, {**state, "sum": state["sum"] + jax.lax.stop_gradient(losses), "count": state["count"] + 1}


def dwa(losses, params, state, ctx):
    """Dynamic Weight Average (Liu, Johns & Davison 2019, Eq. 1): w_t = T·softmax(r/τ)_t with
    r_t = L̄_t(e−1)/L̄_t(e−2), L̄ the epoch-mean training losses; w = 1 for the first two epochs.
    The epoch means are accumulated in the state; an epoch ends every `steps_per_epoch` steps."""
    t = losses.shape[0]
    state, new_state = _epoch_means(losses, state, ctx)
    ratio = state["last"] / (state["before"] + EPS)
    weights = jnp.where(state["epochs"] >= 2, t * jax.nn.softmax(ratio / ctx["options"]["temperature"]), 1.0)
    return weighted(losses, jax.lax.stop_gradient(weights)), new_state


def rlw(losses, params, state, ctx):
    """Random loss weighting (Lin et al. 2022, RLW with normal sampling): w = softmax(ε),
    ε ~ N(0, I_T), fresh every step."""
    weights = jax.nn.softmax(jax.random.normal(ctx["rng"], losses.shape))
    return weighted(losses, weights), state


def gls(losses, params, state, ctx):
    """Geometric loss strategy (Chennupati et al. 2019, Eq. 2): the geometric mean (Π_t L_t)^(1/T),
    times T (equal losses give the sum's gradient); its gradient weights task t by L_gls/(T·L_t),
    so a task whose loss is small is weighted up. Computed as exp(mean log L)."""
    return losses.shape[0] * jnp.exp(jnp.mean(jnp.log(losses + EPS))), state


def stch(losses, params, state, ctx):
    """Smooth Tchebycheff scalarisation (Lin et al. 2024, Eq. 6): T·μ·log Σ_t exp(w_t·ℓ_t/μ), a
    smooth maximum of the weighted objectives (μ → 0: the worst task alone; μ → ∞: Σ_t w_t ℓ_t).
    As in the paper's multi-task experiments, the objectives are the log-losses relative to a
    nadir point, ℓ_t = log L_t − log N_t, N the mean training losses of the first
    `warmup_epochs` epochs, during which the plain sum Σ_t L_t is trained; w: `loss_weights`."""
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


def famo(losses, params, state, ctx):
    """FAMO (Liu et al. 2023, Eq. 7 and Alg. 1): the update Σ_t c·z_t/L_t ∇L_t with z = softmax(ξ)
    and c = 1/Σ_t(z_t/L_t), i.e. fixed weights w_t = T·c·z_t/L_t (Σw = T) on the losses; ξ is
    updated after the step from the losses it produced (`famo_after_update`)."""
    z = jax.nn.softmax(state["logits"])
    ratio = z / (losses + EPS)
    weights = jax.lax.stop_gradient(losses.shape[0] * ratio / jnp.sum(ratio))
    return weighted(losses, weights), state


def famo_after_update(state, losses, new_losses, ctx):
    """FAMO's logit update (Alg. 1): with δ_t = log L_t − log L_t⁺ (the improvement the update
    brought, L⁺ the losses after it on the same batch), ξ ← ξ − β(J_zᵀδ + γξ), J_zᵀδ = z⊙(δ − zᵀδ):
    the tasks that improved most lose weight. β: `lr`, γ: `decay`."""
    xi = state["logits"]
    z = jax.nn.softmax(xi)
    delta = jnp.log(losses + EPS) - jnp.log(new_losses + EPS)
    grad = z * (delta - z @ delta)
    options = ctx["options"]
    return {"logits": xi - options["lr"] * (grad + options["decay"] * xi)}
