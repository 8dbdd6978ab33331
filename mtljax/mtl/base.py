"""What an MTL method is: a `Strategy`, registered by name in `STRATEGIES` with the options it owns.

A method's module (mtljax/mtl/methods/) defines its functions and registers one `Strategy`, built
by the constructor of its kind:

- `loss_weighting(loss)`: `loss(losses, params, state, ctx) -> (scalar, state)` maps the T task
  mean losses to the loss that is differentiated once; `params` are the method's own learnable
  parameters (uncertainty weighting's log-variances), trained by the same optimizer.
- `aggregator(aggregate)`: `aggregate(G, losses, state, ctx) -> (d, head_weights, state)` maps the
  task gradients of the shared parameters (G, T×P) to one direction d; each task's head gets its
  own task's gradient times `head_weights[t]`. `stateless`, `drawing` and `stepped` adapt plain
  functions of G to that signature.
- `representation_weighting(weighting)`: weights from the Gramian of the task gradients of the
  shared representation, then the weighted loss (MGDA-UB).

A Gramian-based method also gives its `weighting`, the Gramian M = G·Gᵀ (T×T) -> the task weights
w with d = wᵀG, so a loop can ask for the weights alone (TorchJD's Weighting). What a method needs
beyond that is a field of its `Strategy` (losses transformed before they are differentiated,
independent samples of the batch, the losses after the update), never a test of its name.
`ctx` holds the step's key (`rng`), the step number, steps per epoch, the configured loss weights
(T) and the method's options (`options`: config `mtl.<name>.*`). Every function is pure, so
methods run under jit, vmap (seeds, sweeps) and sharding.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp

from mtljax.mtl import gradients
from mtljax.mtl.solvers import gram
from mtljax.registry import Registry

STRATEGIES = Registry("strategy")
# How each kind of method computes its gradient (mtljax/mtl/gradients.py).
BY_KIND = {"loss": gradients.weighted_loss, "representation": gradients.representation_weighted,
           "gradient": gradients.aggregated}


@dataclasses.dataclass(frozen=True)
class Strategy:
    """An MTL method: how it computes the gradient, and the functions and state it carries.

    Attributes:
      kind: "loss", "representation" or "gradient" (module docstring).
      computes: the gradient function (mtljax/mtl/gradients.py) that `gradient` calls; None: the
        kind's own (`BY_KIND`).
      init_state: `(T, P) -> state`, P the length of the rows the aggregator gets (the shared
        parameters, or the representation's B·D entries with `mtl.rep_grad`).
      init_params: `T -> params`: the method's own parameters, trained by the same optimizer.
      loss: loss weighting, `(losses, params, state, ctx) -> (scalar, state)`.
      aggregate: gradient aggregation, `(G, losses, state, ctx) -> (d, head_weights, state)`.
      weighting: a Gramian-based method's weights, `M (T×T) -> w` with d = wᵀG.
      scale_losses: gradient kind: `(losses, params) -> losses` differentiated instead of the
        task losses (IMTL-L's scales, DB-MTL's logarithm); the heads get their gradients.
      samples: gradient kind: S > 1 splits the batch into S independent samples; `aggregate` then
        gets G as S×T×P (double sampling: MoDo, SDMGrad).
      after_update: `(state, losses, new_losses, ctx) -> state`, called with the task losses of the
        same batch after the update (FAMO); None: that forward pass is not run.
      random: whether it draws from `ctx["rng"]`.
      gramian: `(M, losses, state, ctx) -> (w, state)`: the weights from the Gramian alone, d = wᵀG
        (a stateless `weighting` gives one: `gramian_of`); where there is one, the Gramian engine
        (mtljax/mtl/gramian.py) can run the method without ever holding G.
      check: `(options, tasks) -> problem | None`: what is wrong with the method's options for
        these tasks (names, in config order), as "<option>: ..." (Krum's n_byzantine for T).
      lookahead: a bilevel method's: `(objective, params, state, batch, lookahead, rng, ctx) ->
        (weights, state)`, the loss weights learned from a look-ahead step and the `lookahead`
        batch (validation data, mtljax/mtl/bilevel.py), after which the step differentiates
        Σ_t w_t L_t; or True for one whose `computes` does it all (FORUM). The train step then
        puts a look-ahead batch in `ctx["lookahead"]`.
    """

    kind: str
    computes: Callable | None = None
    init_state: Callable[[int, int], Any] = lambda t, p: {}
    init_params: Callable[[int], Any] = lambda t: {}
    loss: Callable | None = None
    aggregate: Callable | None = None
    weighting: Callable | None = None
    scale_losses: Callable | None = None
    samples: int = 1
    after_update: Callable | None = None
    random: bool = False
    gramian: Callable | None = None
    check: Callable | None = None
    lookahead: Callable | bool | None = None

    def __post_init__(self):
        if self.kind not in BY_KIND:
            raise ValueError(f"a strategy's kind is one of {', '.join(BY_KIND)}, not {self.kind!r}")
        if self.computes is None:
            object.__setattr__(self, "computes", BY_KIND[self.kind])
        if self.gramian is None and self.weighting is not None and self.kind == "gradient":
            object.__setattr__(self, "gramian", gramian_of(self.weighting))

    def problem(self, options: Mapping[str, Any], tasks: Sequence[str]) -> str | None:
        """What is wrong with `options` (the method's own) for `tasks`, or None (`check`)."""
        return self.check(options, tuple(tasks)) if self.check is not None else None

    def gradient(self, objective: gradients.Objective, params, mtl_state, batch, rng, ctx) -> gradients.Gradient:
        """The gradient the optimizer gets for `batch`, and this method's new state."""
        return self.computes(self, objective, params, mtl_state, batch, rng, ctx)

    def differentiated(self, losses: jnp.ndarray, params) -> jnp.ndarray:
        """The task losses a gradient aggregator differentiates: `scale_losses` of them where the
        method has it, else the losses themselves."""
        return losses if self.scale_losses is None else self.scale_losses(losses, params.get("mtl", {}))


def loss_weighting(loss: Callable, **fields: Any) -> Strategy:
    """A loss weighting: `loss(losses, params, state, ctx) -> (scalar, state)`."""
    return Strategy("loss", loss=loss, **fields)


def aggregator(aggregate: Callable, **fields: Any) -> Strategy:
    """A gradient aggregator: `aggregate(G, losses, state, ctx) -> (d, head_weights, state)`."""
    return Strategy("gradient", aggregate=aggregate, **fields)


def representation_weighting(weighting: Callable, **fields: Any) -> Strategy:
    """Weights from the representation's Gramian, `weighting(M) -> w`, on the configured loss
    weights' place in Σ_t w_t L_t."""
    return Strategy("representation", loss=weighted_static, weighting=weighting, **fields)


def register(name: str, strategy: Strategy, options: Mapping[str, Any] | None = None) -> Strategy:
    """Registers `strategy` as `name` (config `mtl.strategy`) with the options it owns."""
    STRATEGIES.register(name, strategy, options or {})
    return strategy


def ones(g: jnp.ndarray) -> jnp.ndarray:
    """Head weights of 1, one per task (the rows of G, or of each sample's G)."""
    return jnp.ones(g.shape[-2], g.dtype)


def stateless(fn: Callable) -> Callable:
    """`aggregate` of a stateless aggregator `fn(G, **its options)`."""
    return lambda g, losses, state, ctx: (fn(g, **ctx["options"]), ones(g), state)


def drawing(fn: Callable) -> Callable:
    """`aggregate` of a stateless aggregator that draws from the step's key, `fn(G, key, **options)`."""
    return lambda g, losses, state, ctx: (fn(g, ctx["rng"], **ctx["options"]), ones(g), state)


def from_gramian(fn: Callable) -> Callable:
    """`aggregate` of a method defined on the Gramian, `fn(M, losses, state, ctx) -> (w, state)`:
    d = wᵀG (the same `fn` is its `gramian`, so the Gramian engine can run it too)."""

    def aggregate(g, losses, state, ctx):
        w, state = fn(gram(g), losses, state, ctx)
        return w @ g, ones(g), state

    return aggregate


def stepped(fn: Callable) -> Callable:
    """`aggregate` of a stateful method `fn(G, state, step, **options) -> (d, state)`."""

    def aggregate(g, losses, state, ctx):
        d, state = fn(g, state, ctx["step"], **ctx["options"])
        return d, ones(g), state

    return aggregate


def gramian_of(weighting: Callable) -> Callable:
    """`gramian` of a stateless Gramian weighting `weighting(M, **its options) -> w`."""
    return lambda m, losses, state, ctx: (weighting(m, **ctx["options"]), state)


def weighted(losses: jnp.ndarray, weights: jnp.ndarray) -> jnp.ndarray:
    """Σ_t w_t L_t."""
    return jnp.sum(weights * losses)


def weighted_static(losses, params, state, ctx):
    """Σ_t w_t L_t with the context's weights (the config's `loss_weights`, default 1)."""
    return weighted(losses, ctx["weights"]), state


def context(rng: jax.Array, step: jnp.ndarray, steps_per_epoch: int, weights: jnp.ndarray,
            mtl: Mapping[str, Any], tasks: Sequence[str] = ()) -> dict[str, Any]:
    """The `ctx` argument of a method's functions (`mtl`: the config's `mtl` section; `tasks`: the
    task names in order, for options that name a task, PCD's `primary`)."""
    return {"rng": rng, "step": step, "steps_per_epoch": steps_per_epoch, "weights": weights,
            "options": mtl.get(mtl["strategy"], {}), "tasks": tuple(tasks)}


def task_index(name: Any, tasks: Sequence[str]) -> int:
    """The row of task `name` (a name in `tasks`, or already a 0-based index)."""
    return name if isinstance(name, int) else tuple(tasks).index(name)
