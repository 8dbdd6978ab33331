"""How a strategy turns a batch into the gradient the optimizer gets, one function per way.

- `weighted_loss`: a loss weighting's scalar of the task losses, differentiated once.
- `representation_weighted`: weights from the Gramian of the task gradients of the shared
  representation (MGDA-UB), then `weighted_loss` with those weights.
- `aggregated`: each task's gradient of the shared parameters, combined into one direction.
- `representation_aggregated`: each task's gradient of the shared representation (`mtl.rep_grad`),
  combined, then pulled back through the backbone once.

Each returns a `Gradient`. The model enters only through an `Objective`'s functions, which the
train step builds (mtljax/train/step.py), so this module knows nothing of models or data. Every
function accumulates over micro-batches with `microbatched`; each micro-batch gets its own key.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from mtljax.mtl.solvers import gram


class Objective(NamedTuple):
    """The model's side of a gradient, as functions of the parameters and a (micro-)batch.

    Attributes:
      losses: `(params, batch, key, parts) -> (losses, (counts, batch_stats))`: the T task mean
        losses (S×T for `parts` S > 1: independent samples of the batch), each task's metric sums
        and the updated batch statistics.
      representation: `(params, batch, key) -> T×N`: each task's gradient of the shared
        representation (heads only), flattened.
      encoder: `(params, batch, key) -> (backbone -> (z, {"batch_stats": ...}))`: the shared
        representation as a function of the backbone's parameters.
      heads: `(params, z, batch, key) -> (losses, counts)`: the heads on a representation z.
      batch_stats: the statistics the step started from (kept where the model updates none).
      microbatch: > 0: consecutive micro-batches of this size.
      shared: the parameter subtrees every task shares; the others are each task's own.
      forward: a context manager in which `losses` traces for `jax.jvp` (the model's custom-VJP
        layers as plain JAX); None: the model has none or no such twin.
      low_memory: a context manager in which the model's passes trace with their buffers made
        late (the Gramian engine's step: `ops.low_memory`); by default, one that changes nothing.
    """

    losses: Callable
    representation: Callable | None = None
    encoder: Callable | None = None
    heads: Callable | None = None
    batch_stats: Any = None
    microbatch: int = 0
    shared: Sequence[str] = ("backbone",)
    forward: Callable | None = None
    low_memory: Callable = contextlib.nullcontext


class Gradient(NamedTuple):
    """What a gradient function returns: the task losses (T), their metric sums, the updated batch
    statistics, the gradient of every parameter and the strategy's new state."""

    losses: jnp.ndarray
    counts: Mapping[str, jnp.ndarray]
    batch_stats: Any
    grads: Any
    mtl_state: Any


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


def combine(strategy, jac: Mapping[str, Any], losses: jnp.ndarray, state: Any, ctx: Mapping[str, Any],
            shared: Sequence[str] | None = None) -> tuple[dict[str, Any], Any]:
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


def chunking(batch: Mapping[str, jnp.ndarray], size: int) -> tuple[int, int]:
    """(number of micro-batches, their size) of `batch` for micro-batch `size` (0: the whole batch)."""
    total = batch["image"].shape[0]
    size = size if 0 < size < total else total
    if total % size:
        raise ValueError(f"batch size {total} is not a multiple of the micro-batch {size}")
    return total // size, size


def microbatched(fn: Callable, batch: Mapping[str, jnp.ndarray], rng: jax.Array, size: int) -> tuple[Any, Any, int]:
    """`fn(part, key) -> (sums, aux)` over consecutive micro-batches of `size` examples (0 or the
    batch size: the batch at once, with `rng` itself); micro-batch k gets `fold_in(rng, k)`.

    Returns:
      (the sum of `sums` over micro-batches, `aux` of a single micro-batch else None, their count).
      A scan runs them one after another, so each one's activations stay in cache (unrolled,
      XLA interleaved them and ran slower).

    Raises:
      ValueError: the batch is not a multiple of `size`, or a micro-batched model keeps batch
        statistics (they would be per micro-batch).
    """
    n, size = chunking(batch, size)
    if n == 1:
        sums, aux = fn(batch, rng)
        return sums, aux, 1
    chunks = jax.tree.map(lambda a: a.reshape(n, size, *a.shape[1:]), batch)
    first = jax.eval_shape(fn, jax.tree.map(lambda a: a[0], chunks), rng)
    if jax.tree.leaves(first[1]):
        raise ValueError("micro-batching a model with batch statistics (they would be per micro-batch)")

    def add(acc, xs):
        part, k = xs
        return jax.tree.map(jnp.add, acc, fn(part, jax.random.fold_in(rng, k))[0]), None

    init = jax.tree.map(lambda a: jnp.zeros(a.shape, jnp.float32), first[0])
    sums, _ = jax.lax.scan(add, init, (chunks, jnp.arange(n)))
    return sums, None, n


def _mean(tree: Any, n: int) -> Any:
    return tree if n == 1 else jax.tree.map(lambda a: a / n, tree)


def _stats(objective: Objective, stats: Any) -> Any:
    """The batch statistics to keep: the step's own where a micro-batched model returned none."""
    return objective.batch_stats if stats is None else stats


def weighted_loss(strategy, objective: Objective, params, mtl_state, batch, rng, ctx) -> Gradient:
    """Loss weighting: the strategy's loss differentiated once (per micro-batch, averaged: the
    strategies are affine in the losses)."""

    def chunk(part, key):
        def total(p):
            losses, aux = objective.losses(p, part, key, 1)
            return strategy.loss(losses, p.get("mtl", {}), mtl_state, ctx)[0], (losses, aux)

        grads, (losses, (counts, stats)) = jax.grad(total, has_aux=True)(params)
        return (losses, counts, grads), stats

    (losses, counts, grads), stats, n = microbatched(chunk, batch, rng, objective.microbatch)
    losses, grads = _mean(losses, n), _mean(grads, n)
    new_state = strategy.loss(losses, params.get("mtl", {}), mtl_state, ctx)[1]
    return Gradient(losses, counts, _stats(objective, stats), grads, new_state)


def representation_weighted(strategy, objective: Objective, params, mtl_state, batch, rng, ctx) -> Gradient:
    """Representation weighting (MGDA-UB): weights from the Gramian of the per-task gradients of
    the shared representation (the sum of the micro-batches' Gramians: their rows are disjoint;
    each micro-batch's key is the one the gradient pass uses, so dropout masks agree), then
    `weighted_loss` with those weights."""

    def gramian(part, key):
        return gram(objective.representation(params, part, key)), {}

    grams, _, _ = microbatched(gramian, batch, rng, objective.microbatch)
    weights = jax.lax.stop_gradient(strategy.weighting(grams))
    return weighted_loss(strategy, objective, params, mtl_state, batch, rng, {**ctx, "weights": weights})


def aggregated(strategy, objective: Objective, params, mtl_state, batch, rng, ctx) -> Gradient:
    """Gradient aggregation: each task's gradient (`task_gradients`: one forward pass and one
    pullback per task; per independent sample with `strategy.samples`), averaged over
    micro-batches, then combined by `combine`."""
    parts = strategy.samples

    def chunk(part, key):
        def losses_of(p):
            losses, aux = objective.losses(p, part, key, parts)
            return strategy.differentiated(losses, p), (losses, aux)

        _, jac, (losses, (counts, stats)) = task_gradients(losses_of, params, has_aux=True)
        return (losses, counts, jac), stats

    (losses, counts, jac), stats, n = microbatched(chunk, batch, rng, objective.microbatch)
    losses, jac = _mean(losses, n), _mean(jac, n)
    losses = losses if parts == 1 else jnp.mean(losses, axis=0)
    grads, new_state = combine(strategy, jac, losses, mtl_state, ctx, objective.shared)
    return Gradient(losses, counts, _stats(objective, stats), grads, new_state)


def _representation_rows(strategy, objective: Objective, params, part, key):
    """One (micro-)batch's task gradients of the shared representation z and of every parameter
    (through the heads only), with the pullback of z through the backbone."""
    z, pull, stats = jax.vjp(objective.encoder(params, part, key), params["backbone"], has_aux=True)

    def losses_of(inputs):
        p, z = inputs
        losses, counts = objective.heads(p, z, part, key)
        return strategy.differentiated(losses, p), (losses, counts)

    _, (jac, zjac), (losses, counts) = task_gradients(losses_of, (params, z), has_aux=True)
    return (losses, counts, jac, zjac), stats.get("batch_stats", {}), pull


def _pulled_back(objective: Objective, params, chunks, keys, directions):
    """Σ over micro-batches of each one's direction pulled back through the backbone, recomputed
    with the same keys (so the same dropout masks)."""

    def add(acc, xs):
        part, key, d = xs
        _, pull, _ = jax.vjp(objective.encoder(params, part, key), params["backbone"], has_aux=True)
        return jax.tree.map(jnp.add, acc, pull(d)[0]), None

    zero = jax.tree.map(jnp.zeros_like, params["backbone"])
    return jax.lax.scan(add, zero, (chunks, keys, directions))[0]


def representation_aggregated(strategy, objective: Objective, params, mtl_state, batch, rng, ctx) -> Gradient:
    """Gradient aggregation on the shared representation (`mtl.rep_grad`, hard sharing): each
    task's gradient of the features z (B×D, through the heads only), aggregated as rows of a
    T×(B·D) matrix; the backbone gets the direction pulled back through it (one backward pass), the
    heads their own task's gradient times the head weights. Micro-batches: a first pass collects
    every micro-batch's rows (the batch's matrix), a second pulls the direction back, micro-batch by
    micro-batch, with the same keys as `microbatched` gives them."""
    n, size = chunking(batch, objective.microbatch)
    keys = jax.vmap(lambda k: jax.random.fold_in(rng, k))(jnp.arange(n))
    if n == 1:
        (losses, counts, jac, zjac), stats, pull = _representation_rows(strategy, objective, params, batch, rng)
    else:
        chunks = jax.tree.map(lambda a: a.reshape(n, size, *a.shape[1:]), batch)
        rows = lambda xs: _representation_rows(strategy, objective, params, *xs)[0]
        (losses, counts, jac, zjac) = jax.lax.map(rows, (chunks, keys))
        losses, jac = jnp.mean(losses, 0), jax.tree.map(lambda a: jnp.mean(a, 0), jac)
        counts, zjac, stats = jax.tree.map(lambda a: jnp.sum(a, 0), counts), jnp.moveaxis(zjac, 0, 1) / n, None
    direction, head_weights, new_state = strategy.aggregate(zjac.reshape(losses.shape[0], -1), losses, mtl_state, ctx)
    grads = task_weighted({k: v for k, v in jac.items() if k != "backbone"}, head_weights)
    if n == 1:
        grads["backbone"] = pull(direction.reshape(zjac.shape[1:]))[0]
    else:
        grads["backbone"] = _pulled_back(objective, params, chunks, keys, direction.reshape(n, *zjac.shape[2:]))
    return Gradient(losses, counts, objective.batch_stats if not stats else stats, grads, new_state)
