"""The pure train step, `train_step(state, batch, rng) -> (state, metrics)`, and the eval step.

A batch is `{"image": uint8 B×H×W×C, <task>: labels B}`; images become float on device, so the
dataset stays uint8 in memory. One step: transform the batch (compose, augment) → the gradient,
by the function of the strategy's kind (chosen once, outside the trace) → the optimizer update →
the non-finite guard and the moving average → metrics.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from mtljax.data import augment as augmentation
from mtljax import mtl
from mtljax.mtl import aggregators, strategies
from mtljax.models import model_params
from mtljax.models.backbones import encode
from mtljax.train.state import TrainState, ema_update

AUGMENT_KEY = 1_000_003  # fold_in tag of the augmentation key; micro-batch indices are small.
COMPOSE_KEY = 1_000_037  # fold_in tag of the key that builds training images from parts.
STRATEGY_KEY = 1_000_033  # fold_in tag of the strategies' key.
NO_STEP = float(2**24)  # "nan/first" of a finite step: above any step number (exact in float32).


@dataclasses.dataclass(frozen=True)
class StepSpec:
    """What a train step is built from.

    Attributes:
      model: the MultiTaskModel.
      tx: the optax chain.
      tasks: task name -> Task (mtljax/tasks.py), in config order.
      loss_weights: task name -> configured weight.
      strategy: the MTL strategy (mtljax/mtl/strategies.py) and `mtl`, the config's `mtl` section.
      microbatch: > 0: the gradient is accumulated over consecutive micro-batches of this size
        (`microbatched`); on XLA:CPU batches of 32 keep the convolutions' data in cache.
      augment: the config's `augment` section: each image augmented with its own random draws (augment.apply).
      configure: for sweeps, `hyper -> (model, tx)` built from the replica's traced values inside
        the trace; swept `loss_weights.<task>` and `augment.<key>` are read from `state.hyper`.
      steps_per_epoch: for strategies that work in epochs (DWA).
      compose: `compose(batch, key, aug) -> batch` builds training images from stored parts
        (mtljax/data/compose.py); it applies the augmentation itself, to each part.
      ema_decay: > 0: each step also updates `state.ema`.
      shared: the top-level parameter subtrees every task shares (the architecture's
        `shared_params()`): gradient aggregators combine the task gradients of these.
    """

    model: Any
    tx: optax.GradientTransformation
    tasks: Mapping[str, Any]
    loss_weights: Mapping[str, float]
    strategy: strategies.Strategy
    mtl: Mapping[str, Any]
    microbatch: int = 0
    augment: Mapping[str, float] | None = None
    configure: Callable | None = None
    steps_per_epoch: int = 1
    compose: Callable | None = None
    ema_decay: float = 0.0
    shared: tuple[str, ...] = ("backbone",)


def make_train_step(spec: StepSpec) -> Callable:
    """Returns the pure `train_step(state, batch, rng) -> (state, metrics)` of `spec`.

    The dropout key is `fold_in(rng, state.step)` (then folded with the micro-batch index): a fresh
    key every step from one base key. A non-finite loss or gradient leaves the state as it was
    (the step is skipped) and is counted in the `nan/...` metrics. Metrics are batch means:
    `loss` (Σ_t w_t L_t with the configured weights), `<task>/loss` and each task's step metrics.
    """
    gradient = gradient_fn(spec)

    def train_step(state: TrainState, batch: Mapping[str, jnp.ndarray], rng: jax.Array):
        step_rng = jax.random.fold_in(rng, state.step)
        model, tx = spec.configure(state.hyper) if spec.configure is not None else (spec.model, spec.tx)
        weights = jnp.stack([jnp.asarray(state.hyper.get(f"loss_weights.{t}", w), jnp.float32)
                             for t, w in spec.loss_weights.items()])
        batch = transform_batch(spec, batch, step_rng, state.hyper)
        # The strategy's own randomness (RLW, PCGrad) is one key per step, shared by micro-batches.
        ctx = strategies.context(jax.random.fold_in(step_rng, STRATEGY_KEY), state.step, spec.steps_per_epoch,
                                 weights, spec.mtl)
        losses, counts, batch_stats, grads, mtl_state = gradient(spec, model, state, batch, step_rng, ctx)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        updates = jax.tree.map(lambda u: u * state.plateau.scale, updates)
        params = optax.apply_updates(state.params, updates)
        if spec.strategy.after_update is not None:  # The same batch's losses after the update (FAMO).
            after = task_losses(spec, model, params, state.batch_stats, batch, step_rng)[0]
            mtl_state = spec.strategy.after_update(mtl_state, losses, jax.lax.stop_gradient(after), ctx)
        ok, metrics = step_metrics(spec, weights, losses, counts, grads, state.step, batch["image"].shape[0])
        ema = state.ema
        if spec.ema_decay:
            ema = ema_update(ema, {"params": params, "batch_stats": batch_stats}, spec.ema_decay, state.step)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
        new_state = state.replace(step=state.step + 1, params=keep(params, state.params),
                                  batch_stats=keep(batch_stats, state.batch_stats),
                                  opt_state=keep(opt_state, state.opt_state), mtl=keep(mtl_state, state.mtl),
                                  ema=keep(ema, state.ema))
        return new_state, metrics

    return train_step


def transform_batch(spec: StepSpec, batch: Mapping[str, jnp.ndarray], step_rng: jax.Array,
                    hyper: Mapping[str, jnp.ndarray]) -> Mapping[str, jnp.ndarray]:
    """The batch the model trains on: images composed from parts and/or augmented (keys
    `fold_in(step key, COMPOSE_KEY | AUGMENT_KEY)`), with swept augmentation values from `hyper`."""
    aug = {k: hyper.get(f"augment.{k}", v) for k, v in (spec.augment or {}).items()}
    active = bool(aug) and (augmentation.is_active(spec.augment) or any(f"augment.{k}" in hyper for k in aug))
    if spec.compose is not None:
        return spec.compose(batch, jax.random.fold_in(step_rng, COMPOSE_KEY), aug if active else None)
    if active:
        images = augmentation.apply(augmentation.to_float(batch["image"]), jax.random.fold_in(step_rng, AUGMENT_KEY), aug)
        return {**batch, "image": images}
    return batch


def step_metrics(spec: StepSpec, weights, losses, counts, grads, step, size: int) -> tuple[jnp.ndarray, dict]:
    """(ok, metrics): whether every loss and the gradient are finite, and the step's metrics
    (zeros for a skipped step; its number in `nan/first`)."""
    loss_ok = jnp.isfinite(losses)
    grads_ok = jnp.isfinite(optax.tree.norm(grads))
    ok = jnp.all(loss_ok) & grads_ok
    metrics = {"loss": jnp.where(ok, jnp.sum(weights * losses), 0.0)}
    for k, t in enumerate(spec.tasks):
        metrics[f"{t}/loss"] = jnp.where(ok, losses[k], 0.0)
        metrics.update({key: jnp.where(ok, v / size, 0.0) for key, v in counts.items() if key.startswith(f"{t}/")})
        metrics[f"nan/{t}"] = (~loss_ok[k]).astype(jnp.float32)
    metrics.update({"nan/steps": (~ok).astype(jnp.float32), "nan/grads": (~grads_ok).astype(jnp.float32),
                    "nan/first": jnp.where(ok, NO_STEP, step.astype(jnp.float32))})
    return ok, metrics


def step_metric_names(tasks: Mapping[str, Any]) -> list[str]:
    """The keys of a train step's metrics, in a fixed order."""
    keys = ["loss", *[f"{t}/{m}" for t, task in tasks.items() for m in ("loss", *task.train_metrics)]]
    return [*keys, "nan/steps", "nan/grads", *[f"nan/{t}" for t in tasks], "nan/first"]


def task_losses(spec: StepSpec, model, params, batch_stats, batch, rng, parts: int = 1):
    """Per-task mean losses (T; S×T for `parts` S > 1, see `task_losses_of`), and
    ({`task/metric`: batch sum}, updated batch stats)."""
    variables = {"params": model_params(params), "batch_stats": batch_stats}
    outputs, updated = model.apply(variables, augmentation.to_float(batch["image"]), train=True,
                                   rngs={"dropout": rng}, mutable=["batch_stats"])
    losses = task_losses_of(spec, outputs, batch, parts)
    return losses, (task_counts(spec, outputs, batch), updated.get("batch_stats", {}))


def task_losses_of(spec: StepSpec, outputs: Mapping[str, jnp.ndarray], batch, parts: int = 1) -> jnp.ndarray:
    """The T per-task mean losses of the model's outputs on `batch`; for `parts` S > 1 an S×T
    matrix, row s from the examples i with i mod S = s (independent samples of the batch), each
    scaled by S/B, so that the mean of the rows is the batch's mean loss."""
    if parts == 1:
        return jnp.stack([task.loss(outputs[t], batch[t]).mean() for t, task in spec.tasks.items()])
    size = batch[next(iter(spec.tasks))].shape[0]
    member = (jnp.arange(size)[None, :] % parts == jnp.arange(parts)[:, None]) * (parts / size)
    return jnp.stack([member @ task.loss(outputs[t], batch[t]) for t, task in spec.tasks.items()], axis=1)


def task_counts(spec: StepSpec, outputs: Mapping[str, jnp.ndarray], batch) -> dict[str, jnp.ndarray]:
    """{`task/metric`: batch sum} of every task's step metrics."""
    return {f"{t}/{m}": v for t, task in spec.tasks.items() for m, v in task.step_metrics(outputs[t], batch[t]).items()}


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
    n, size = _chunking(batch, size)
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


def _chunking(batch: Mapping[str, jnp.ndarray], size: int) -> tuple[int, int]:
    """(number of micro-batches, their size) of `batch` for micro-batch `size` (0: the whole batch)."""
    total = batch["image"].shape[0]
    size = size if 0 < size < total else total
    if total % size:
        raise ValueError(f"batch size {total} is not a multiple of the micro-batch {size}")
    return total // size, size


def _mean(tree: Any, n: int) -> Any:
    return tree if n == 1 else jax.tree.map(lambda a: a / n, tree)


def loss_gradient(spec: StepSpec, model, state: TrainState, batch, rng, ctx):
    """Loss weighting: the strategy's loss differentiated once (per micro-batch, averaged: the
    strategies are affine in the losses). Returns (losses, counts, batch stats, grads, mtl state)."""

    def chunk(part, key):
        def total(p):
            losses, aux = task_losses(spec, model, p, state.batch_stats, part, key)
            return spec.strategy.loss(losses, p.get("mtl", {}), state.mtl, ctx)[0], (losses, aux)

        grads, (losses, (counts, stats)) = jax.grad(total, has_aux=True)(state.params)
        return (losses, counts, grads), stats

    (losses, counts, grads), stats, n = microbatched(chunk, batch, rng, spec.microbatch)
    losses, grads = _mean(losses, n), _mean(grads, n)
    mtl_state = spec.strategy.loss(losses, state.params.get("mtl", {}), state.mtl, ctx)[1]
    return losses, counts, state.batch_stats if stats is None else stats, grads, mtl_state


def representation_gradient(spec: StepSpec, model, state: TrainState, batch, rng, ctx):
    """Representation weighting (MGDA-UB): weights from the Gram matrix of the per-task gradients
    of the shared representation (the sum of the micro-batches' Gram matrices: their rows are
    disjoint; each micro-batch's key is the one the gradient pass uses, so dropout masks agree),
    then `loss_gradient` with those weights."""

    def gram(part, key):
        return representation_gram(spec, model, state.params, state.batch_stats, part, key), {}

    grams, _, _ = microbatched(gram, batch, rng, spec.microbatch)
    weights = jax.lax.stop_gradient(spec.strategy.representation_weights(grams))
    return loss_gradient(spec, model, state, batch, rng, {**ctx, "weights": weights})


def representation_gram(spec: StepSpec, model, params, batch_stats, batch, rng) -> jnp.ndarray:
    """G_z·G_zᵀ (T×T) of the per-task gradients of the shared representation (heads only)."""
    variables = {"params": model_params(params), "batch_stats": batch_stats}
    images = augmentation.to_float(batch["image"])
    apply = lambda v, mutable: model.apply(v, images, train=True, rngs={"dropout": rng}, mutable=mutable)
    zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), jax.eval_shape(
        lambda: apply(variables, ["batch_stats", "perturbations"])[1]["perturbations"]))

    def losses_of(perturbations):
        outputs, _ = apply({**variables, "perturbations": perturbations}, ["batch_stats"])
        return task_losses_of(spec, outputs, batch)

    z = jax.vmap(lambda tree: ravel_pytree(tree)[0])(jax.jacrev(losses_of)(zeros))
    return aggregators.gram(z)


def differentiated(spec: StepSpec, losses: jnp.ndarray, params) -> jnp.ndarray:
    """The task losses a gradient aggregator differentiates: the strategy's transform of them
    (IMTL-L's scales, DB-MTL's logarithm) where it has one, else the losses themselves."""
    scale = spec.strategy.scale_losses
    return losses if scale is None else scale(losses, params.get("mtl", {}))


def aggregated_gradient(spec: StepSpec, model, state: TrainState, batch, rng, ctx):
    """Gradient aggregation: each task's gradient (`mtl.task_gradients`: one forward pass and one
    pullback per task; per independent sample with `strategy.samples`), averaged over
    micro-batches, then combined by `mtl.combine`."""
    parts = spec.strategy.samples

    def chunk(part, key):
        def losses_of(p):
            losses, aux = task_losses(spec, model, p, state.batch_stats, part, key, parts)
            return differentiated(spec, losses, p), (losses, aux)

        _, jac, (losses, (counts, stats)) = mtl.task_gradients(losses_of, state.params, has_aux=True)
        return (losses, counts, jac), stats

    (losses, counts, jac), stats, n = microbatched(chunk, batch, rng, spec.microbatch)
    losses, jac = _mean(losses, n), _mean(jac, n)
    losses = losses if parts == 1 else jnp.mean(losses, axis=0)
    grads, mtl_state = mtl.combine(spec.strategy, jac, losses, state.mtl, ctx, spec.shared)
    return losses, counts, state.batch_stats if stats is None else stats, grads, mtl_state


GRADIENTS: dict[str, Callable] = {"loss": loss_gradient, "representation": representation_gradient,
                                  "gradient": aggregated_gradient}


def gradient_fn(spec: StepSpec) -> Callable:
    """The gradient function of the spec's strategy: by its kind, and for gradient aggregators with
    `mtl.rep_grad` the aggregation of the shared representation's task gradients."""
    if spec.strategy.kind == "gradient" and spec.mtl.get("rep_grad", False):
        return rep_aggregated_gradient
    return GRADIENTS[spec.strategy.kind]


def rep_aggregated_gradient(spec: StepSpec, model, state: TrainState, batch, rng, ctx):
    """Gradient aggregation on the shared representation (`mtl.rep_grad`, hard sharing): each
    task's gradient of the features z (B×D, through the heads only), aggregated as rows of a
    T×(B·D) matrix; the backbone gets the direction pulled back through it (one backward pass), the
    heads their own task's gradient times the head weights. Micro-batches: a first pass collects
    every micro-batch's rows (the batch's matrix), a second pulls the direction back, micro-batch by
    micro-batch, with the same keys (so the same dropout masks)."""
    variables = {"params": model_params(state.params), "batch_stats": state.batch_stats}

    def encoder(part, key):
        return lambda backbone: model.apply({**variables, "params": {**variables["params"], "backbone": backbone}},
                                            augmentation.to_float(part["image"]), train=True, rngs={"dropout": key},
                                            mutable=["batch_stats"], method=encode)

    def rows(part, key):
        z, pull, stats = jax.vjp(encoder(part, key), state.params["backbone"], has_aux=True)

        def losses_of(inputs):
            params, z = inputs
            outputs = model.apply({**variables, "params": model_params(params)}, None, train=True, features=z,
                                  rngs={"dropout": key})
            losses = task_losses_of(spec, outputs, part)
            return differentiated(spec, losses, params), (losses, task_counts(spec, outputs, part))

        _, (jac, zjac), (losses, counts) = mtl.task_gradients(losses_of, (state.params, z), has_aux=True)
        return (losses, counts, jac, zjac), stats.get("batch_stats", {}), pull

    n, size = _chunking(batch, spec.microbatch)
    keys = jax.vmap(lambda k: jax.random.fold_in(rng, k))(jnp.arange(n))  # As `microbatched` gives them.
    if n == 1:
        (losses, counts, jac, zjac), stats, pull = rows(batch, rng)
    else:
        chunks = jax.tree.map(lambda a: a.reshape(n, size, *a.shape[1:]), batch)
        (losses, counts, jac, zjac) = jax.lax.map(lambda xs: rows(*xs)[0], (chunks, keys))
        losses, jac = jnp.mean(losses, 0), jax.tree.map(lambda a: jnp.mean(a, 0), jac)
        counts, zjac, stats = jax.tree.map(lambda a: jnp.sum(a, 0), counts), jnp.moveaxis(zjac, 0, 1) / n, None
    flat_z = zjac.reshape(len(spec.tasks), -1)
    direction, head_weights, mtl_state = spec.strategy.aggregate(flat_z, losses, state.mtl, ctx)
    grads = mtl.task_weighted({k: v for k, v in jac.items() if k != "backbone"}, head_weights)
    if n == 1:
        grads["backbone"] = pull(direction.reshape(zjac.shape[1:]))[0]
    else:
        d_chunks = direction.reshape(n, *zjac.shape[2:])

        def add(acc, xs):
            part, key, d = xs
            _, pull, _ = jax.vjp(encoder(part, key), state.params["backbone"], has_aux=True)
            return jax.tree.map(jnp.add, acc, pull(d)[0]), None

        zero = jax.tree.map(jnp.zeros_like, state.params["backbone"])
        grads["backbone"], _ = jax.lax.scan(add, zero, (chunks, keys, d_chunks))
    return losses, counts, state.batch_stats if not stats else stats, grads, mtl_state


def make_eval_step(model) -> Callable:
    """Returns `eval_step(params, batch_stats, images) -> {task: outputs}` (inference mode)."""

    def eval_step(params, batch_stats, images):
        variables = {"params": model_params(params), "batch_stats": batch_stats}
        return model.apply(variables, augmentation.to_float(images), train=False)

    return eval_step
