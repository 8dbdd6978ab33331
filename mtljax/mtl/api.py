"""mtljax's multi-task methods for any JAX training loop (the trainer uses these same functions).

    from mtljax import mtl
    losses, jac = mtl.task_gradients(loss_fn, params)     # loss_fn(params) -> the T task losses
    d = mtl.aggregate("upgrad", g)                        # g: T×P task gradients -> P direction
    w = mtl.weights("upgrad", g @ g.T)                    # a Gramian weighting: T×T -> T weights
    loss = mtl.weigh("gls", losses)                       # a loss weighting: T losses -> scalar
    tx = optax.chain(mtl.aggregation("upgrad", 2, shared=("trunk",)), optax.adam(1e-3))
    updates, opt_state = tx.update(jac, opt_state, params, losses=losses, key=key)

Scaling convention: every direction and weighting is scaled so that agreeing task gradients
(or equal losses) give the gradient of the plain sum Σ_t L_t, so learning rates carry over from
summed losses. docs/api.md documents each function.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

from mtljax.mtl import strategies
from mtljax.mtl.gradients import combine, flatten, task_gradients, task_weighted
from mtljax.mtl.solvers import gram
from mtljax.registry import Option

__all__ = ["AggregationState", "aggregate", "aggregation", "combine", "context", "flatten", "method",
           "method_options", "methods", "task_gradients", "task_weighted", "weigh", "weighted_methods", "weights"]


def methods() -> list[str]:
    """Every method's name (config `mtl.strategy`)."""
    return list(strategies.STRATEGIES.names())


def method(name: str) -> strategies.Strategy:
    """The method `name`: its kind, state and parameter initialisers and pure functions.

    Raises:
      ValueError: an unknown name.
    """
    if name not in strategies.STRATEGIES:
        raise ValueError(f"unknown MTL method {name!r}; choose one of {', '.join(methods())}")
    return strategies.STRATEGIES[name]


def method_options(name: str, **options: Any) -> dict[str, Any]:
    """The options of method `name`: its defaults updated by `options`, each checked.

    Raises:
      ValueError: an unknown method or option, or a bad value (one line naming it).
    """
    method(name)
    own: Mapping[str, Option] = strategies.STRATEGIES.options(name)
    for key, value in options.items():
        if key not in own:
            known = ", ".join(own) or "none"
            raise ValueError(f"{name}.{key}: unknown option of {name!r} (its options: {known})")
        problem = own[key].problem(value)
        if problem:
            raise ValueError(f"{name}.{key}: {problem}")
    return {**{k: o.default for k, o in own.items()}, **options}


def context(name: str, key: jax.Array | None = None, step: Any = 0, steps_per_epoch: int = 1,
            weights: jnp.ndarray | None = None, num_tasks: int = 0, tasks: Sequence[str] | None = None,
            **options: Any) -> dict[str, Any]:
    """The `ctx` a method's functions take (`strategies.context`), with `options` checked, also
    against the tasks (`tasks`: their names; default "0", "1", ... for `num_tasks`).

    Raises:
      ValueError: an unknown option or a bad value, one line ("krum.n_byzantine: ...").
    """
    mtl = {"strategy": name, name: method_options(name, **options)}
    if method(name).random and key is None:
        raise ValueError(f"{name!r} draws random numbers: pass key=jax.random.key(...)")
    tasks = tuple(str(t) for t in range(num_tasks)) if tasks is None else tuple(tasks)
    problem = method(name).problem(mtl[name], tasks) if num_tasks or tasks else None
    if problem:
        raise ValueError(f"{name}.{problem}")
    key = jax.random.key(0) if key is None else key
    weights = jnp.ones(num_tasks) if weights is None else weights
    return strategies.context(key, jnp.asarray(step), steps_per_epoch, weights, mtl, tasks)


def aggregate(name: str, g: jnp.ndarray, key: jax.Array | None = None, losses: jnp.ndarray | None = None,
              weights: jnp.ndarray | None = None, **options: Any) -> jnp.ndarray:
    """The direction of gradient aggregator `name` for the task-gradient matrix `g` (T×P), from
    its initial state (a stateful method's first step) and its default options updated by
    `options`; `key` for the random ones (PCGrad, GradDrop, GradVac), `losses` (default 1) for
    those that read the losses (GradNorm, EPO), `weights` (default 1) the preference ray of the
    per-ray methods (EPO, ParetoMTL, PMGDA). `mgda_ub` takes `g` as the representation's
    gradients. Scaled so that identical rows give their sum.

    Raises:
      ValueError: an unknown method or option, a loss weighting, or no key for a random method.
    """
    strategy = method(name)
    _no_lookahead(name, strategy)
    t, p = g.shape[-2], g.shape[-1]
    ctx = context(name, key, weights=weights, num_tasks=t, **options)
    if strategy.kind == "representation":
        return strategy.weighting(gram(g)) @ g
    if strategy.kind != "gradient":
        raise ValueError(f"{name!r} is a loss weighting: use mtl.weigh({name!r}, losses)")
    losses = jnp.ones(t, g.dtype) if losses is None else losses
    return strategy.aggregate(g, losses, strategy.init_state(t, p), ctx)[0]


def _no_lookahead(name: str, strategy: strategies.Strategy) -> None:
    """Refuses a bilevel method where there is no look-ahead batch (it learns its weights from one)."""
    if strategy.lookahead is not None:
        raise ValueError(f"{name!r} learns its loss weights from a look-ahead step on validation data; it runs in a "
                         f"step with a look-ahead batch: the trainer's, or mtl.method({name!r}) in your own")


def weights(name: str, gramian: jnp.ndarray, **options: Any) -> jnp.ndarray:
    """The task weights w of Gramian-based method `name` (its Weighting, as TorchJD calls it) for
    the Gramian M = G·Gᵀ (T×T) of the task gradients: its direction is wᵀG (up to float rounding).
    `mtl.weighted_methods()` lists the methods that have one.

    Raises:
      ValueError: an unknown method or option, or a method whose direction is not a weighting of
        the rows that depends on the Gramian alone.
    """
    strategy = method(name)
    if strategy.weighting is None:
        raise ValueError(f"{name!r} has no Gramian weighting; these do: {', '.join(weighted_methods())}")
    return strategy.weighting(gramian, **method_options(name, **options))


def weighted_methods() -> list[str]:
    """The methods whose direction is a weighting of the Gramian (`weights`)."""
    return [name for name in methods() if strategies.STRATEGIES[name].weighting is not None]


def weigh(name: str, losses: jnp.ndarray, key: jax.Array | None = None, params: Any = None, state: Any = None,
          step: Any = 0, steps_per_epoch: int = 1, weights: jnp.ndarray | None = None,
          **options: Any) -> tuple[jnp.ndarray, Any]:
    """Loss weighting `name` as a pure function of the T task losses: (the scalar to
    differentiate, the method's new state). `params`/`state` default to the method's initial ones;
    `weights` are the static loss weights (`static`; the preference ray of STCH, Tchebycheff, PBI
    and COSMOS; default 1).

    Raises:
      ValueError: an unknown method or option, or a gradient aggregator.
    """
    strategy = method(name)
    _no_lookahead(name, strategy)
    if strategy.kind != "loss":
        raise ValueError(f"{name!r} is a gradient method: use mtl.aggregate or mtl.aggregation")
    t = losses.shape[0]
    ctx = context(name, key, step, steps_per_epoch, weights, num_tasks=t, **options)
    params = strategy.init_params(t) if params is None else params
    state = strategy.init_state(t, 0) if state is None else state
    return strategy.loss(losses, params, state, ctx)


class AggregationState(NamedTuple):
    """The optax state of `aggregation`: the method's state and the step count."""

    method: Any
    step: jnp.ndarray


def aggregation(name: str, num_tasks: int, shared: Sequence[str] | None = None,
                **options: Any) -> optax.GradientTransformationExtraArgs:
    """An optax transformation from per-task gradients to one gradient, to chain before an
    optimizer: `tx.update(jac, opt_state, params, losses=losses, key=key)` with `jac` from
    `task_gradients` (a dict of subtrees; `shared`: the names aggregated, None: all; the others
    get their own task's gradient). Gradient aggregators, and loss weightings without parameters
    of their own (applied to the rows by the chain rule, Σ_t ∂L/∂L_t·g_t).

    Raises:
      ValueError: an unknown method or option, or a method that needs the trainer's step (its own
        parameters, transformed losses, split batches or the losses after the update).
    """
    strategy = method(name)
    method_options(name, **options)
    needs = [what for what, has in (("parameters of its own", strategy.init_params(num_tasks)),
                                    ("transformed losses", strategy.scale_losses),
                                    ("independent samples of the batch", strategy.samples > 1),
                                    ("the losses after the update", strategy.after_update),
                                    ("the representation's gradients", strategy.kind == "representation"),
                                    ("a look-ahead step on validation data", strategy.lookahead)) if has]
    if needs:
        raise ValueError(f"{name!r} needs {needs[0]}: use its functions (mtl.method({name!r})) in your step")

    def init(params):
        rows = params if shared is None else {k: params[k] for k in shared}
        size = sum(a.size for a in jax.tree.leaves(rows))
        return AggregationState(strategy.init_state(num_tasks, size), jnp.zeros((), jnp.int32))

    def update(jac, state, params=None, *, losses, key=None, **extra):
        del params, extra
        ctx = context(name, key, state.step, num_tasks=num_tasks, **options)
        if strategy.kind == "loss":
            weights, new = jax.grad(lambda l: strategy.loss(l, {}, state.method, ctx), has_aux=True)(losses)
            return task_weighted(jac, weights), AggregationState(new, state.step + 1)
        grads, new = combine(strategy, jac, losses, state.method, ctx, shared)
        return grads, AggregationState(new, state.step + 1)

    return optax.GradientTransformationExtraArgs(init, update)
