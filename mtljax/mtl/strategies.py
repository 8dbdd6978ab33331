"""Multi-task strategies by name (config `mtl.strategy`), one interface for all of them.

Three kinds, all composed with the optax chain (they produce the gradient it receives):

- loss weighting (`weightings.py`): `loss(losses, mtl_params, state, ctx) -> (scalar, state)`
  maps the per-task mean losses (a T vector) to the loss that is differentiated once.
  `mtl_params` are the strategy's own learnable parameters (uncertainty weighting's
  log-variances), trained by the same optimizer.
- representation weighting (MGDA-UB): `representation_weights(M) -> w` from the Gram matrix of
  the per-task gradients of the shared representation (cheap: only the heads are differentiated);
  the loss Σ_t w_t L_t is then differentiated once, as for loss weighting.
- gradient aggregation (`aggregators.py`, stateful ones in `stateful.py`):
  `aggregate(G, losses, state, ctx) -> (d, head_weights, state)` maps the per-task gradients of
  the shared parameters (G, T×P) to one direction d; each task's head gets its own task's
  gradient times `head_weights[t]` (1 for most aggregators).

What a method needs beyond that is declared on its `Strategy` (losses transformed before they are
differentiated, independent samples of the batch, the losses after the update), never by name.
`ctx` holds the step's key (`rng`), the step number, steps per epoch, the configured loss weights
(T) and the strategy's own options (`options`: config `mtl.<name>.*`, declared at registration).
Every function is pure, so strategies run under jit, vmap (seeds, sweeps) and sharding.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from mtljax.mtl import aggregators, stateful, weightings
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
    """A strategy: its kind ("loss", "representation" or "gradient") and functions.

    Attributes:
      kind: how the step computes the gradient (module docstring).
      init_state: `(T, P) -> state`, P the length of the rows the aggregator gets (the shared
        parameters, or the representation's B·D entries with `mtl.rep_grad`).
      init_params: `T -> params`: the strategy's own parameters, trained by the same optimizer.
      loss: loss weighting, `(losses, params, state, ctx) -> (scalar, state)`.
      aggregate: gradient aggregation, `(G, losses, state, ctx) -> (d, head_weights, state)`.
      representation_weights: kind "representation": the Gram matrix -> task weights.
      scale_losses: gradient kind: `(losses, params) -> losses` differentiated instead of the
        task losses (IMTL-L's scales, DB-MTL's logarithm); the heads get their gradients.
      samples: gradient kind: S > 1 splits the batch into S independent samples; `aggregate` then
        gets G as S×T×P (double sampling: MoDo, SDMGrad).
      after_update: `(state, losses, new_losses, ctx) -> state`, called with the task losses of the
        same batch after the update (FAMO); None: that forward pass is not run.
      random: whether it draws from `ctx["rng"]`.
    """

    kind: str
    init_state: Callable[[int, int], Any] = lambda t, p: {}
    init_params: Callable[[int], Any] = lambda t: {}
    loss: Callable | None = None
    aggregate: Callable | None = None
    representation_weights: Callable | None = None
    scale_losses: Callable | None = None
    samples: int = 1
    after_update: Callable | None = None
    random: bool = False


def _ones(g):
    return jnp.ones(g.shape[-2], g.dtype)


def _aggregator(fn: Callable) -> Callable:
    """`aggregate` of a stateless aggregator `fn(G, **its options)`."""
    return lambda g, losses, state, ctx: (fn(g, **ctx["options"]), _ones(g), state)


def _random(fn: Callable) -> Callable:
    """`aggregate` of a stateless aggregator that draws from the step's key, `fn(G, key, **options)`."""
    return lambda g, losses, state, ctx: (fn(g, ctx["rng"], **ctx["options"]), _ones(g), state)


def _mgda_ub_weights(m):
    """MGDA-UB (Sener & Koltun 2018, Eq. 6 and Alg. 2): the min-norm weights of the gradients with
    respect to the shared representation z (an upper bound of the parameter-level problem), times
    T so that agreeing tasks keep unit weights; the exact small QP of `aggregators`."""
    return m.shape[0] * aggregators.min_norm_weights_exact(m)


def _stepped(fn: Callable) -> Callable:
    """`aggregate` of a stateful method `fn(G, state, step, **options) -> (d, state)`."""

    def aggregate(g, losses, state, ctx):
        d, state = fn(g, state, ctx["step"], **ctx["options"])
        return d, _ones(g), state

    return aggregate


def _gradvac(g, losses, state, ctx):
    d, targets = stateful.gradvac(g, state["targets"], ctx["rng"], ctx["options"]["beta"])
    return d, _ones(g), {"targets": targets}


def _modo(g, losses, state, ctx):
    d, lam = stateful.modo(g, state["lam"], **ctx["options"])
    return d, _ones(g), {"lam": lam}


def _sdmgrad(g, losses, state, ctx):
    d, w = stateful.sdmgrad(g, state["w"], **ctx["options"])
    return d, _ones(g), {"w": w}


def _uniform(key: str) -> Callable:
    return lambda t, p: {key: jnp.full((t,), 1.0 / t)}


def _imtl_scale(losses, params):
    """IMTL-L (Liu et al. 2021, Sec. 3.1): each task's loss scaled to e^s_t·L_t − s_t, s_t learnable
    (trained by the same optimizer on this loss: it drives e^s_t·L_t towards 1)."""
    s = params["loss_scale"]
    return jnp.exp(s) * losses - s


STRATEGIES = Registry("strategy")
_loss = lambda fn, **kw: Strategy("loss", loss=fn, **kw)
_gradient = lambda fn, **kw: Strategy("gradient", aggregate=fn, **kw)
_BETA_SIGMA = Option(0.5, "decay of β over steps: β/(k+1)^σ", minimum=0)
STRATEGIES.register("equal", _loss(weightings.equal))
STRATEGIES.register("static", _loss(weightings.static))
STRATEGIES.register("uw", _loss(weightings.uncertainty, init_params=lambda t: {"log_var": jnp.zeros(t)}))
STRATEGIES.register("dwa", _loss(weightings.dwa, init_state=weightings.dwa_state),
                    {"temperature": Option(2.0, "DWA's temperature T", positive=True)})
STRATEGIES.register("rlw", _loss(weightings.rlw, random=True))
STRATEGIES.register("gradnorm", _gradient(
    lambda g, losses, state, ctx: stateful.gradnorm(g, losses, state, **ctx["options"]),
    init_state=lambda t, p: {"weights": jnp.ones(t), "initial": jnp.zeros(t), "started": jnp.zeros((), bool)}),
                    {"alpha": Option(1.5, "GradNorm's asymmetry α", minimum=0),
                     "lr": Option(0.025, "learning rate of the task weights", minimum=0)})
STRATEGIES.register("pcgrad", _gradient(_random(aggregators.pcgrad), random=True))
STRATEGIES.register("mgda", _gradient(_aggregator(aggregators.mgda)))
STRATEGIES.register("mgda_ub", Strategy("representation", loss=weightings.static,
                                        representation_weights=_mgda_ub_weights))
STRATEGIES.register("cagrad", _gradient(_aggregator(aggregators.cagrad)), {"c": Option(0.4, "CAGrad's c", minimum=0)})
STRATEGIES.register("imtl_g", _gradient(_aggregator(aggregators.imtl_g)))
STRATEGIES.register("nash_mtl", _gradient(_aggregator(aggregators.nash_mtl)))
STRATEGIES.register("aligned_mtl", _gradient(_aggregator(aggregators.aligned_mtl)))
STRATEGIES.register("upgrad", _gradient(_aggregator(aggregators.upgrad)))
STRATEGIES.register("gls", _loss(weightings.gls))
STRATEGIES.register("graddrop", _gradient(_random(aggregators.graddrop), random=True),
                    {"leak": Option(0.0, "fraction of each dropped entry kept (1: the plain sum)", minimum=0)})
STRATEGIES.register("gradvac", _gradient(_gradvac, random=True, init_state=lambda t, p: {"targets": jnp.zeros((t, t))}),
                    {"beta": Option(0.01, "GradVac's EMA rate β of the cosine targets", minimum=0)})
STRATEGIES.register("imtl", _gradient(_aggregator(aggregators.imtl_g), scale_losses=_imtl_scale,
                                      init_params=lambda t: {"loss_scale": jnp.zeros(t)}))
STRATEGIES.register("moco", _gradient(_stepped(stateful.moco),
                                      init_state=lambda t, p: {"y": jnp.zeros((t, p)), "lam": jnp.full((t,), 1.0 / t)}),
                    {"beta": Option(0.5, "MoCo's tracking rate β", positive=True), "beta_sigma": _BETA_SIGMA,
                     "gamma": Option(0.1, "MoCo's step size γ of the weights", positive=True),
                     "gamma_sigma": Option(0.5, "decay of γ over steps: γ/(k+1)^σ", minimum=0),
                     "rho": Option(0.0, "MoCo's regularisation ρ of the weights", minimum=0)})
STRATEGIES.register("db_mtl", _gradient(_stepped(stateful.db_mtl), scale_losses=lambda losses, params:
                                        jnp.log(losses + 1e-8), init_state=lambda t, p: {"avg": jnp.zeros((t, p))}),
                    {"beta": Option(0.9, "DB-MTL's moving-average rate β", minimum=0), "beta_sigma": _BETA_SIGMA})
STRATEGIES.register("stch", _loss(weightings.stch, init_state=weightings.stch_state),
                    {"mu": Option(1.0, "STCH's smoothing μ", positive=True),
                     "warmup_epochs": Option(1, "epochs of plain summation whose mean losses are the nadir point",
                                             minimum=0)})
STRATEGIES.register("excessmtl", _gradient(
    lambda g, losses, state, ctx: stateful.excessmtl(g, state, ctx["step"], **ctx["options"]),
    init_state=lambda t, p: {"acc": jnp.zeros((t, p)), "initial": jnp.ones(t), "weights": jnp.ones(t)}),
                    {"lr": Option(0.01, "ExcessMTL's step size η of the task weights", minimum=0)})
STRATEGIES.register("fairgrad", _gradient(_aggregator(aggregators.fairgrad)),
                    {"alpha": Option(1.0, "FairGrad's fairness α (1: Nash-MTL's proportional fairness)",
                                     positive=True)})
STRATEGIES.register("famo", _loss(weightings.famo, init_state=lambda t, p: {"logits": jnp.zeros(t)},
                                  after_update=weightings.famo_after_update),
                    {"lr": Option(0.025, "FAMO's step size β of the task logits", positive=True),
                     "decay": Option(0.001, "FAMO's weight decay γ of the task logits", minimum=0)})
STRATEGIES.register("modo", _gradient(_modo, samples=3, init_state=_uniform("lam")),
                    {"gamma": Option(0.1, "MoDo's step size γ of the weights", positive=True),
                     "rho": Option(0.0, "MoDo's regularisation ρ of the weights", minimum=0)})
STRATEGIES.register("sdmgrad", _gradient(_sdmgrad, samples=3, init_state=_uniform("w")),
                    {"reg": Option(0.3, "SDMGrad's λ: pull towards the mean gradient", minimum=0),
                     "lr": Option(0.5, "step size of the weights' inner iterations", positive=True),
                     "iters": Option(20, "inner iterations per step", positive=True)})
STRATEGIES.register("dualproj", _gradient(_aggregator(aggregators.dualproj)))
STRATEGIES.register("config", _gradient(_aggregator(aggregators.config_direction)))


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
