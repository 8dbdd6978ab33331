"""mtljax's multi-task methods for any JAX training loop (the trainer uses these same functions).

    from mtljax import mtl
    losses, jac = mtl.task_gradients(loss_fn, params)     # loss_fn(params) -> the T task losses
    d = mtl.aggregate("upgrad", g)                        # g: T×P task gradients -> P direction
    loss = mtl.weigh("gls", losses)                       # a loss weighting: T losses -> scalar
    tx = optax.chain(mtl.aggregation("upgrad", 2, shared=("trunk",)), optax.adam(1e-3))
    updates, opt_state = tx.update(jac, opt_state, params, losses=losses, key=key)

Scaling convention: every direction and weighting is scaled so that agreeing task gradients
(or equal losses) give the gradient of the plain sum Σ_t L_t, so learning rates carry over from
summed losses. docs/api.md documents each function.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from mtljax.mtl import aggregators, strategies
from mtljax.registry import Option


def methods() -> list[str]:
    """Every method's name (config `mtl.strategy`)."""
    return strategies.STRATEGIES.names()


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
            weights: jnp.ndarray | None = None, num_tasks: int = 0, **options: Any) -> dict[str, Any]:
    """The `ctx` a method's functions take (`strategies.context`), with checked `options`."""
    mtl = {"strategy": name, name: method_options(name, **options)}
    if method(name).random and key is None:
        raise ValueError(f"{name!r} draws random numbers: pass key=jax.random.key(...)")
    key = jax.random.key(0) if key is None else key
    weights = jnp.ones(num_tasks) if weights is None else weights
    return strategies.context(key, jnp.asarray(step), steps_per_epoch, weights, mtl)


def task_gradients(loss_fn: Callable, params: Any, *args: Any, has_aux: bool = False):
    """The gradient of every task loss: one forward pass, then one pullback per loss.

    Args:
      loss_fn: `loss_fn(params, *args)` -> the task losses (T, or S×T for S samples), with
        `has_aux`: (losses, aux).
      params: any pytree (a Flax model's `params`).

    Returns:
      (losses, jac) or (losses, jac, aux); every leaf of `jac` has the losses' shape in front.
    """
    out = jax.vjp(lambda p: loss_fn(p, *args), params, has_aux=has_aux)
    losses, pullback = out[0], out[1]
    n = losses.size
    # One pullback per task, one after another: on XLA:CPU faster than jax.jacrev's vmapped ones.
    rows = [pullback(jax.nn.one_hot(k, n, dtype=losses.dtype).reshape(losses.shape))[0] for k in range(n)]
    jac = jax.tree.map(lambda *a: jnp.stack(a).reshape(*losses.shape, *a[0].shape), *rows)
    return (losses, jac, out[2]) if has_aux else (losses, jac)


def task_weighted(jac: Mapping[str, Any], weights: jnp.ndarray) -> dict[str, Any]:
    """Σ_t weights[t] · jac[t] of every subtree (leaves with a leading task axis)."""
    return {name: jax.tree.map(lambda a: jnp.tensordot(weights, a, axes=1), sub) for name, sub in jac.items()}


def flatten(jac: Any, lead: int = 1) -> tuple[jnp.ndarray, Callable]:
    """(the matrix of `jac`'s rows, one per task, `lead` leading axes; `unravel`: a row -> a pytree)."""
    ravel = lambda tree: ravel_pytree(tree)[0]
    for _ in range(lead):
        ravel = jax.vmap(ravel)
    return ravel(jac), ravel_pytree(jax.tree.map(lambda a: a[(0,) * lead], jac))[1]


def combine(strategy: strategies.Strategy, jac: Mapping[str, Any], losses: jnp.ndarray, state: Any,
            ctx: Mapping[str, Any], shared: Sequence[str] | None = None) -> tuple[dict[str, Any], Any]:
    """One gradient from per-task gradients (`jac`: a dict of subtrees, every leaf with a leading
    task axis, S×T with `strategy.samples` S > 1): the `shared` subtrees (None: all) get the
    aggregated direction; every other subtree (heads, gates, a task's own experts) the sum of its
    tasks' gradients times the method's head weights (only its own task's is non-zero).

    Returns:
      (gradient, the method's new state).
    """
    lead = 2 if strategy.samples > 1 else 1
    shared = tuple(jac) if shared is None else shared
    common = {name: jac[name] for name in shared if name in jac}  # (A parameter-free expert has none.)
    flat, unravel = flatten(common, lead)
    direction, head_weights, state = strategy.aggregate(flat, losses, state, ctx)
    own = {name: sub for name, sub in jac.items() if name not in common}
    if lead == 2:  # Each task's own subtrees: the mean over the samples (the batch's gradient).
        own = jax.tree.map(lambda a: jnp.mean(a, axis=0), own)
    return {**task_weighted(own, head_weights), **unravel(direction)}, state


def aggregate(name: str, g: jnp.ndarray, key: jax.Array | None = None, losses: jnp.ndarray | None = None,
              **options: Any) -> jnp.ndarray:
    """The direction of gradient aggregator `name` for the task-gradient matrix `g` (T×P), from
    its initial state (a stateful method's first step) and its default options updated by
    `options`; `key` for the random ones (PCGrad, GradDrop, GradVac), `losses` (default 1) for
    those that read the losses (GradNorm). `mgda_ub` takes `g` as the representation's gradients.
    Scaled so that identical rows give their sum.

    Raises:
      ValueError: an unknown method or option, a loss weighting, or no key for a random method.
    """
    strategy = method(name)
    t, p = g.shape[-2], g.shape[-1]
    ctx = context(name, key, num_tasks=t, **options)
    if strategy.kind == "representation":
        return strategy.representation_weights(aggregators.gram(g)) @ g
    if strategy.kind != "gradient":
        raise ValueError(f"{name!r} is a loss weighting: use mtl.weigh({name!r}, losses)")
    losses = jnp.ones(t, g.dtype) if losses is None else losses
    return strategy.aggregate(g, losses, strategy.init_state(t, p), ctx)[0]


def weigh(name: str, losses: jnp.ndarray, key: jax.Array | None = None, params: Any = None, state: Any = None,
          step: Any = 0, steps_per_epoch: int = 1, weights: jnp.ndarray | None = None,
          **options: Any) -> tuple[jnp.ndarray, Any]:
    """Loss weighting `name` as a pure function of the T task losses: (the scalar to
    differentiate, the method's new state). `params`/`state` default to the method's initial ones;
    `weights` are the static loss weights (`static`, STCH's preference; default 1).

    Raises:
      ValueError: an unknown method or option, or a gradient aggregator.
    """
    strategy = method(name)
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
                                    ("the representation's gradients", strategy.kind == "representation")) if has]
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
