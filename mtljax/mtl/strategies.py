"""Multi-task strategies by name (config `mtl.strategy`), one interface for all of them.

Two kinds, both composed with the optax chain (they produce the gradient it receives):

- loss weighting: `loss(losses, mtl_params, state, ctx) -> (scalar, state)` maps the per-task mean
  losses (a T vector) to the loss that is differentiated once. `mtl_params` are the strategy's
  own learnable parameters (uncertainty weighting's log-variances), trained by the same optimizer.
- representation weighting (MGDA-UB): `representation_weights(M) -> w` from the Gram matrix of
  the per-task gradients of the shared representation (cheap: only the heads are differentiated);
  the loss Σ_t w_t L_t is then differentiated once, as for loss weighting.
- gradient aggregation: `aggregate(G, losses, state, ctx) -> (d, head_weights, state)` maps the
  per-task gradients of the shared parameters (G, T×P) to one direction d; each task's head gets
  its own task's gradient times `head_weights[t]` (1 for the aggregators).

`ctx` holds the step's key (`rng`), the step number, steps per epoch, the configured loss weights
(T) and the strategy's own options (`options`: config `mtl.<name>.*`, declared at registration).
Every function is pure, so strategies run under jit, vmap (seeds, sweeps) and sharding.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from mtljax.mtl import aggregators
from mtljax.registry import Option, Registry

# Options of every strategy (config `mtl.*`); a strategy's own live under `mtl.<name>`.
MTL_OPTIONS: dict[str, Option] = {
    "strategy": Option("static", "the strategy's registered name", choices=lambda: STRATEGIES.names()),
    "diagnose_every": Option(0, "epochs between task-gradient conflict diagnostics; 0: off", minimum=0),
    "diagnose_batch": Option(256, "training images the diagnostics use (the same ones every time)", positive=True),
    "rep_grad": Option(False, "gradient aggregators: combine the task gradients of the shared representation "
                       "instead of the shared parameters (cheaper; architectures with one shared representation)"),
}


@dataclasses.dataclass(frozen=True)
class Strategy:
    """A strategy: its kind ("loss" or "gradient"), its state and parameter initialisers (of the
    number of tasks), and its `loss` or `aggregate` function."""

    kind: str
    init_state: Callable[[int], Any] = lambda t: {}
    init_params: Callable[[int], Any] = lambda t: {}
    loss: Callable | None = None
    aggregate: Callable | None = None
    representation_weights: Callable | None = None  # kind "representation": Gram matrix -> weights.


def _weighted(losses, weights):
    return jnp.sum(weights * losses)


# --- Loss weighting --------------------------------------------------------------------------------

def _equal(losses, params, state, ctx):
    """Equal weights: Σ_t L_t."""
    return jnp.sum(losses), state


def _static(losses, params, state, ctx):
    """Static weights: Σ_t w_t L_t with the config's `loss_weights` (default 1)."""
    return _weighted(losses, ctx["weights"]), state


def _uncertainty(losses, params, state, ctx):
    """Uncertainty weighting (Kendall, Gal & Cipolla 2018, Eq. 7 in LibMTL's form): with learnable
    s_t = log σ_t², L = Σ_t ½·exp(−s_t)·L_t + ½·s_t. The s_t start at 0 (all weights ½)."""
    s = params["log_var"]
    return jnp.sum(0.5 * jnp.exp(-s) * losses + 0.5 * s), state


def _dwa_state(t):
    return {"sum": jnp.zeros(t), "count": jnp.zeros(()), "last": jnp.ones(t), "before": jnp.ones(t),
            "epochs": jnp.zeros((), jnp.int32)}


def _dwa(losses, params, state, ctx):
    """Dynamic Weight Average (Liu, Johns & Davison 2019, Eq. 1): w_t = T·softmax(r/τ)_t with
    r_t = L̄_t(e−1)/L̄_t(e−2), L̄ the epoch-mean training losses; w = 1 for the first two epochs.
    The epoch means are accumulated in the state; an epoch ends every `steps_per_epoch` steps."""
    t = losses.shape[0]
    new_epoch = (ctx["step"] > 0) & (ctx["step"] % ctx["steps_per_epoch"] == 0)
    mean = state["sum"] / jnp.maximum(state["count"], 1.0)
    state = jax.tree.map(lambda a, b: jnp.where(new_epoch, a, b),
                         {"sum": jnp.zeros(t), "count": jnp.zeros(()), "last": mean, "before": state["last"],
                          "epochs": state["epochs"] + 1}, state)
    ratio = state["last"] / (state["before"] + aggregators.EPS)
    weights = jnp.where(state["epochs"] >= 2, t * jax.nn.softmax(ratio / ctx["options"]["temperature"]), 1.0)
    weights = jax.lax.stop_gradient(weights)
    state = {**state, "sum": state["sum"] + jax.lax.stop_gradient(losses), "count": state["count"] + 1}
    return _weighted(losses, weights), state


def _rlw(losses, params, state, ctx):
    """Random loss weighting (Lin et al. 2022, RLW with normal sampling): w = softmax(ε),
    ε ~ N(0, I_T), fresh every step."""
    weights = jax.nn.softmax(jax.random.normal(ctx["rng"], losses.shape))
    return _weighted(losses, weights), state


# --- Gradient aggregation ----------------------------------------------------------------------------

def _ones(g):
    return jnp.ones(g.shape[0], g.dtype)


def _gradnorm_state(t):
    return {"weights": jnp.ones(t), "initial": jnp.zeros(t), "started": jnp.zeros((), bool)}


def _gradnorm(g, losses, state, ctx):
    """GradNorm (Chen et al. 2018, Eqs. 1-2): with G_t = w_t‖g_t‖, Ḡ their mean, r_t = L̃_t/mean(L̃)
    and L̃_t = L_t/L_t(0), the weights descend L_grad = Σ_t |G_t − Ḡ·r_t^α| (the target held
    constant), by SGD with learning rate `lr`, then are renormalised to Σw = T. d = Σ w_t g_t with the
    weights before the update. Here g_t are the gradients of all shared parameters (the paper's W
    is the last shared layer, a cheaper approximation)."""
    weights = state["weights"]
    initial = jnp.where(state["started"], state["initial"], losses)
    norms = jnp.linalg.norm(g, axis=1)
    grad_norms = weights * norms
    ratio = (losses / initial) / jnp.mean(losses / initial)
    target = jax.lax.stop_gradient(jnp.mean(grad_norms) * ratio ** ctx["options"]["alpha"])
    d_weights = jnp.sign(grad_norms - target) * norms  # ∂L_grad/∂w_t.
    new = jnp.maximum(weights - ctx["options"]["lr"] * d_weights, 1e-6)
    new = new * g.shape[0] / jnp.sum(new)
    return weights @ g, weights, {"weights": new, "initial": initial, "started": jnp.ones((), bool)}


def _aggregator(fn: Callable) -> Callable:
    return lambda g, losses, state, ctx: (fn(g), _ones(g), state)


def _mgda_ub_weights(m):
    """MGDA-UB (Sener & Koltun 2018, Eq. 6 and Alg. 2): the min-norm weights of the gradients with
    respect to the shared representation z (an upper bound of the parameter-level problem), times
    T so that agreeing tasks keep unit weights; the exact small QP of `aggregators`."""
    return m.shape[0] * aggregators.min_norm_weights_exact(m)


STRATEGIES = Registry("strategy")
STRATEGIES.register("equal", Strategy("loss", loss=_equal))
STRATEGIES.register("static", Strategy("loss", loss=_static))
STRATEGIES.register("uw", Strategy("loss", init_params=lambda t: {"log_var": jnp.zeros(t)}, loss=_uncertainty))
STRATEGIES.register("dwa", Strategy("loss", init_state=_dwa_state, loss=_dwa),
                    {"temperature": Option(2.0, "DWA's temperature T", positive=True)})
STRATEGIES.register("rlw", Strategy("loss", loss=_rlw))
STRATEGIES.register("gradnorm", Strategy("gradient", init_state=_gradnorm_state, aggregate=_gradnorm),
                    {"alpha": Option(1.5, "GradNorm's asymmetry α", minimum=0),
                     "lr": Option(0.025, "learning rate of the task weights", minimum=0)})
STRATEGIES.register("pcgrad", Strategy("gradient", aggregate=lambda g, losses, state, ctx: (
    aggregators.pcgrad(g, ctx["rng"]), _ones(g), state)))
STRATEGIES.register("mgda", Strategy("gradient", aggregate=_aggregator(aggregators.mgda)))
STRATEGIES.register("mgda_ub", Strategy("representation", loss=_static, representation_weights=_mgda_ub_weights))
STRATEGIES.register("cagrad", Strategy("gradient", aggregate=lambda g, losses, state, ctx: (
    aggregators.cagrad(g, ctx["options"]["c"]), _ones(g), state)), {"c": Option(0.4, "CAGrad's c", minimum=0)})
STRATEGIES.register("imtl_g", Strategy("gradient", aggregate=_aggregator(aggregators.imtl_g)))
STRATEGIES.register("nash_mtl", Strategy("gradient", aggregate=_aggregator(aggregators.nash_mtl)))
STRATEGIES.register("aligned_mtl", Strategy("gradient", aggregate=_aggregator(aggregators.aligned_mtl)))
STRATEGIES.register("upgrad", Strategy("gradient", aggregate=_aggregator(aggregators.upgrad)))


def get(name: str) -> Strategy:
    """The strategy registered as `name`."""
    return STRATEGIES[name]


def context(rng: jax.Array, step: jnp.ndarray, steps_per_epoch: int, weights: jnp.ndarray,
            mtl: Mapping[str, Any]) -> dict[str, Any]:
    """The `ctx` argument of the strategy functions (`mtl`: the config's `mtl` section)."""
    return {"rng": rng, "step": step, "steps_per_epoch": steps_per_epoch, "weights": weights,
            "options": mtl.get(mtl["strategy"], {})}


def default_config(name: str = "static", **options: Any) -> dict[str, Any]:
    """An `mtl` config section: strategy `name` with its default options updated by `options`."""
    section = {k: o.default for k, o in MTL_OPTIONS.items()}
    own = {k: o.default for k, o in STRATEGIES.options(name).items()}
    return {**section, "strategy": name, **({name: {**own, **options}} if own else {})}
