"""The pure train step, `train_step(state, batch, rng) -> (state, metrics)`, and the eval step.

A batch is `{"image": uint8 B×H×W×C, <task>: labels B}`; images become float on device, so the
dataset stays uint8 in memory. The step's core, `mtl_update`, is the method: the task losses (as
functions of the parameters, `objective`) → the strategy's gradient (`Strategy.gradient`: a
weighted loss differentiated, task gradients aggregated, or the representation's) → the update.
Around it, `train_step` picks the replica's swept model and optimizer, transforms the batch
(compose, augment), and afterwards keeps the step only where everything is finite, updates the
moving average and reports metrics.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from mtljax.data import augment as augmentation
from mtljax.mtl import pareto, strategies
from mtljax.mtl.gradients import Gradient, Objective
from mtljax.models import encode, model_params, ops
from mtljax.models.preference import PreferenceModel
from mtljax.train.state import TrainState, ema_update

AUGMENT_KEY = 1_000_003  # fold_in tag of the augmentation key; micro-batch indices are small.
COMPOSE_KEY = 1_000_037  # fold_in tag of the key that builds training images from parts.
STRATEGY_KEY = 1_000_033  # fold_in tag of the strategies' key.
RAY_KEY = 1_000_039  # fold_in tag of the key of a conditioned run's preference ray.
LOOKAHEAD_KEY = 1_000_081  # fold_in tag of the key that draws a bilevel method's look-ahead batch.
NO_STEP = float(2**24)  # "nan/first" of a finite step: above any step number (exact in float32).


@dataclasses.dataclass(frozen=True)
class StepSpec:
    """What a train step is built from.

    Attributes:
      model: the architecture (mtljax/models/architectures/).
      tx: the optax chain.
      tasks: task name -> Task (mtljax/tasks.py), in config order.
      loss_weights: task name -> configured weight.
      strategy: the MTL strategy, resolved once (`strategies.resolve`), and `mtl`, the config's
        `mtl` section (the strategy's options).
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
      condition: not "none": one model for every preference ray (COSMOS, PHN, PML): each step draws
        a ray from Dirichlet(`alpha`), which is the step's loss weights and T more input channels.
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
    condition: str = "none"
    alpha: float = 1.0

    @property
    def lookahead(self) -> str | None:
        """Where a bilevel method's look-ahead batch comes from ("val" or "train"); None: no such method."""
        if self.strategy.lookahead is None:
            return None
        return self.mtl[self.mtl["strategy"]]["lookahead"]


def make_train_step(spec: StepSpec) -> Callable:
    """Returns the pure `train_step(state, batch, rng) -> (state, metrics)` of `spec`.

    The dropout key is `fold_in(rng, state.step)` (then folded with the micro-batch index): a fresh
    key every step from one base key. A non-finite loss or gradient leaves the state as it was
    (the step is skipped) and is counted in the `nan/...` metrics. Metrics are batch means:
    `loss` (Σ_t w_t L_t with the configured weights), `<task>/loss` and each task's step metrics.
    """

    def train_step(state: TrainState, batch: Mapping[str, jnp.ndarray], rng: jax.Array):
        step_rng = jax.random.fold_in(rng, state.step)
        model, tx = spec.configure(state.hyper) if spec.configure is not None else (spec.model, spec.tx)
        weights = jnp.stack([jnp.asarray(state.hyper.get(f"loss_weights.{t}", w), jnp.float32)
                             for t, w in spec.loss_weights.items()])
        look = batch.get("lookahead")
        batch = transform_batch(spec, {k: v for k, v in batch.items() if k != "lookahead"}, step_rng, state.hyper)
        if spec.condition != "none":  # One model for every ray: this step's ray, seen and weighed.
            weights = pareto.sample_rays(jax.random.fold_in(step_rng, RAY_KEY), len(spec.tasks), alpha=spec.alpha)
            batch = {**batch, "image": pareto.condition_input(augmentation.to_float(batch["image"]), weights)}
        # The strategy's own randomness (RLW, PCGrad) is one key per step, shared by micro-batches.
        ctx = strategies.context(jax.random.fold_in(step_rng, STRATEGY_KEY), state.step, spec.steps_per_epoch,
                                 weights, spec.mtl, tuple(spec.tasks))
        if spec.lookahead is not None:  # Training items are built (and warped) as the batch's are.
            key = jax.random.fold_in(step_rng, LOOKAHEAD_KEY)
            ctx["lookahead"] = transform_batch(spec, look, key, state.hyper) if spec.lookahead == "train" else look
        grad, params, opt_state, mtl_state = mtl_update(spec, model, tx, state, batch, step_rng, ctx)
        return guarded(spec, state, weights, grad, params, opt_state, mtl_state, batch["image"].shape[0])

    return train_step


def lookahead_batch(source: Mapping[str, jnp.ndarray], rng: jax.Array, step: jnp.ndarray, size: int) -> dict:
    """A bilevel method's look-ahead batch: `size` items of `source` (the validation split, or the
    training split) drawn with replacement by `fold_in(fold_in(rng, step), LOOKAHEAD_KEY)`, so a
    resumed run draws the same ones."""
    n = jax.tree.leaves(source)[0].shape[0]
    idx = jax.random.randint(jax.random.fold_in(jax.random.fold_in(rng, step), LOOKAHEAD_KEY), (size,), 0, n)
    return jax.tree.map(lambda a: a[idx], source)


def mtl_update(spec: StepSpec, model, tx, state: TrainState, batch, rng, ctx) -> tuple[Gradient, Any, Any, Any]:
    """The method's step: task losses → the strategy's gradient → the update. Returns (the
    gradient with the losses it came from, new parameters, optimizer state, strategy state)."""
    task_objective = objective(spec, model, state.batch_stats)
    grad = spec.strategy.gradient(task_objective, state.params, state.mtl, batch, rng, ctx)
    params, opt_state = apply_update(tx, grad.grads, state)
    mtl_state = grad.mtl_state
    if spec.strategy.after_update is not None:  # The same batch's losses after the update (FAMO).
        after = task_objective.losses(params, batch, rng, 1)[0]
        mtl_state = spec.strategy.after_update(mtl_state, grad.losses, jax.lax.stop_gradient(after), ctx)
    return grad, params, opt_state, mtl_state


def apply_update(tx: optax.GradientTransformation, grads, state: TrainState) -> tuple[Any, Any]:
    """(new parameters, optimizer state): the optax update, scaled by the plateau schedule's factor."""
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    updates = jax.tree.map(lambda u: u * state.plateau.scale, updates)
    return optax.apply_updates(state.params, updates), opt_state


def guarded(spec: StepSpec, state: TrainState, weights, grad: Gradient, params, opt_state, mtl_state, size: int):
    """(the next state, metrics): the update kept only where every loss and the gradient are
    finite, with the moving average of the parameters and statistics (`ema_decay`)."""
    ok, metrics = step_metrics(spec, weights, grad.losses, grad.counts, grad.grads, state.step, size)
    ema = state.ema
    if spec.ema_decay:
        ema = ema_update(ema, {"params": params, "batch_stats": grad.batch_stats}, spec.ema_decay, state.step)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
    new_state = state.replace(step=state.step + 1, params=keep(params, state.params),
                              batch_stats=keep(grad.batch_stats, state.batch_stats),
                              opt_state=keep(opt_state, state.opt_state), mtl=keep(mtl_state, state.mtl),
                              ema=keep(ema, state.ema))
    return new_state, metrics


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


def objective(spec: StepSpec, model, batch_stats) -> Objective:
    """The task losses of `model` as the strategy's gradient functions take them
    (mtljax/mtl/gradients.py): of the parameters, of the shared representation, of the heads."""

    def losses(params, batch, key, parts=1):
        return task_losses(spec, model, params, batch_stats, batch, key, parts)

    def encoder(params, batch, key):
        variables = {"params": model_params(params), "batch_stats": batch_stats}
        return lambda backbone: model.apply({**variables, "params": {**variables["params"], "backbone": backbone}},
                                            augmentation.to_float(batch["image"]), train=True, rngs={"dropout": key},
                                            mutable=["batch_stats"], method=encode)

    def heads(params, z, batch, key):
        variables = {"params": model_params(params), "batch_stats": batch_stats}
        outputs = model.apply(variables, None, train=True, features=z, rngs={"dropout": key})
        return task_losses_of(spec, outputs, batch), task_counts(spec, outputs, batch)

    def representation(params, batch, key):
        return representation_rows(spec, model, params, batch_stats, batch, key)

    return Objective(losses, representation, encoder, heads, batch_stats, spec.microbatch, spec.shared,
                     ops.forward_mode, ops.low_memory)


def representation_rows(spec: StepSpec, model, params, batch_stats, batch, rng) -> jnp.ndarray:
    """G_z (T×N): each task's gradient of the shared representation (through the heads only), from
    the model's zero `perturbations` of its features."""
    variables = {"params": model_params(params), "batch_stats": batch_stats}
    images = augmentation.to_float(batch["image"])
    apply = lambda v, mutable: model.apply(v, images, train=True, rngs={"dropout": rng}, mutable=mutable)
    zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), jax.eval_shape(
        lambda: apply(variables, ["batch_stats", "perturbations"])[1]["perturbations"]))

    def losses_of(perturbations):
        outputs, _ = apply({**variables, "perturbations": perturbations}, ["batch_stats"])
        return task_losses_of(spec, outputs, batch)

    return jax.vmap(lambda tree: ravel_pytree(tree)[0])(jax.jacrev(losses_of)(zeros))


def at_ray(model, params, images, preference) -> tuple[Any, Callable]:
    """(parameters, eval step) that evaluate `model` at a fixed ray: a network whose weights are
    made from the ray (PHN, PML) gets them made once, here, and its wrapped network runs on them,
    rather than making them again for every example; any other model runs as it is."""
    if preference is None or not isinstance(model, PreferenceModel):
        return params, make_eval_step(model, preference)
    probe = pareto.condition_input(augmentation.to_float(images[:1]), jnp.asarray(preference, jnp.float32))
    made = model.apply({"params": model_params(params)}, probe, method=PreferenceModel.weights)
    return made, make_eval_step(model.inner.clone(parent=None))


def make_eval_step(model, preference=None) -> Callable:
    """Returns `eval_step(params, batch_stats, images) -> {task: outputs}` (inference mode); a
    preference-conditioned model sees `preference` (T) beside every image."""

    def eval_step(params, batch_stats, images):
        variables = {"params": model_params(params), "batch_stats": batch_stats}
        x = augmentation.to_float(images)
        if preference is not None:
            x = pareto.condition_input(x, jnp.asarray(preference, jnp.float32))
        return model.apply(variables, x, train=False)

    return eval_step
