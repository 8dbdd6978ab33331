"""Pure train and eval steps: `train_step(state, batch, rng) -> (state, metrics)`.

A batch is `{"image": uint8 B×H×W×C, <task>: int32 B}`; images are converted to float here, on
device, so the dataset stays uint8 in memory. The loss is Σ_t w_t · CE_t.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import flax
import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from mtljax.data import augment as augmentation
from mtljax.mtl import aggregators, strategies


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training (a pytree, checkpointed whole).

    Attributes:
      step: number of train steps taken.
      params: model parameters.
      batch_stats: BatchNorm running statistics ({} when the model has none).
      opt_state: the optax state.
      plateau: state of the reduce-on-plateau controller; its `scale` multiplies the updates.
      hyper: this replica's swept values, `{dotted key: scalar}` ({} outside sweeps; sweeps.py).
      mtl: the MTL strategy's state (strategies.py; {} for stateless strategies).
      ema: `{"params", "batch_stats"}` averaged over the steps (`train.ema_decay`; None when off):
        what evaluation and checkpoint loading use when present (`eval_variables`).
    """

    step: jnp.ndarray
    params: Any
    batch_stats: Any
    opt_state: Any
    plateau: Any
    hyper: Any = flax.struct.field(default_factory=dict)
    mtl: Any = flax.struct.field(default_factory=dict)
    ema: Any = None


def eval_variables(state: TrainState) -> tuple[Any, Any]:
    """(params, batch_stats) to evaluate: the exponential moving average when kept, else the current."""
    source = state.ema or {"params": state.params, "batch_stats": state.batch_stats}
    return source["params"], source["batch_stats"]


def ema_update(ema: Any, new: Any, decay: float, step: jnp.ndarray) -> Any:
    """`ema + (1 - d)·(new - ema)` with `d = min(decay, (1 + step) / (10 + step))`.

    The warm-up (TensorFlow's ExponentialMovingAverage with num_updates) keeps the first steps from
    weighting the initialisation for ~1/(1 - decay) steps; the difference form leaves an unchanged
    value (a frozen parameter) exactly as it was."""
    step = step.astype(jnp.float32)
    d = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
    return jax.tree.map(lambda e, x: e + (1.0 - d) * (x - e), ema, new)


def to_float(images: jnp.ndarray) -> jnp.ndarray:
    """uint8 pixels to float32 in [0, 1]; float images (already converted) pass through."""
    return images if jnp.issubdtype(images.dtype, jnp.floating) else images.astype(jnp.float32) / 255.0


AUGMENT_KEY = 1_000_003  # fold_in tag of the augmentation key; micro-batch indices are small.
COMPOSE_KEY = 1_000_037  # fold_in tag of the key that builds training images from parts.


def create_state(model, tx: optax.GradientTransformation, plateau, rng: jax.Array,
                 image_shape: tuple[int, ...], strategy: str = "static", ema: bool = False) -> TrainState:
    """Initialises parameters with `rng`, the MTL strategy's parameters (under `params["mtl"]`,
    trained by the same optimizer) and state, and the optimizer and plateau states; with `ema`,
    the moving average starts at the initial parameters and statistics."""
    variables = model.init(rng, jnp.zeros((1, *image_shape), jnp.float32), train=False)
    params = dict(variables["params"])
    n_tasks = len(model.heads)
    extra = strategies.get(strategy).init_params(n_tasks)
    if extra:
        params["mtl"] = extra
    batch_stats = variables.get("batch_stats", {})
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=batch_stats,
        opt_state=tx.init(params),
        plateau=plateau.init(jnp.zeros(())),
        mtl=strategies.get(strategy).init_state(n_tasks),
        ema={"params": params, "batch_stats": batch_stats} if ema else None,
    )


def cross_entropy(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
    """Per-example softmax cross-entropy with integer labels."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def make_train_step(model, tx: optax.GradientTransformation, loss_weights: Mapping[str, float],
                    microbatch: int = 0, augment: Mapping[str, float] | None = None,
                    configure: Callable | None = None, mtl: Mapping[str, Any] | None = None,
                    steps_per_epoch: int = 1, compose: Callable | None = None, ema_decay: float = 0.0) -> Callable:
    """Returns the pure `train_step(state, batch, rng) -> (state, metrics)`.

    Args:
      model: the MultiTaskModel.
      tx: the optax chain.
      loss_weights: task -> weight, for every configured task.
      microbatch: when 0 < microbatch < batch size, the gradient is accumulated over consecutive
        micro-batches of this size inside the step. The result is the same mean gradient (up to
        float summation order); on XLA:CPU, batches of 32 keep the convolutions' data in cache.
        Models with BatchNorm must not use it (their statistics would be per micro-batch).
      augment: the config's `augment` section; when active, each image is warped by its own random
        affine map (mtljax/data/augment.py) under the key `fold_in(step key, AUGMENT_KEY)`.
      configure: for sweeps, `hyper -> (model, tx)` builds both from the replica's traced values
        `state.hyper` inside the trace; swept `loss_weights.<task>` and `augment.<key>` are read
        from `state.hyper` directly. None: `model` and `tx` as given.
      mtl: the config's `mtl` section (strategies.py); None: static loss weights.
      steps_per_epoch: for strategies that work in epochs (DWA).
      compose: `compose(batch, key, aug) -> batch` (mtljax/data/compose.py) builds the training images
        from their stored parts under the key `fold_in(step key, COMPOSE_KEY)`; it applies the
        augmentation itself (to each part), with `aug` None when none is active.
      ema_decay: > 0: each step also updates `state.ema` (`ema_update`), which must exist.

    A loss-weighting strategy's loss is differentiated once (per micro-batch, averaged: they are
    affine in the losses). A gradient strategy needs each task's gradient: one forward pass and
    one `jax.vjp` pullback per task, averaged over micro-batches;
    the shared parameters' rows are aggregated into one direction, and each head keeps its own
    task's gradient. The optax chain then takes that gradient as usual.

    The dropout key is `fold_in(rng, state.step)` (then folded with the micro-batch index): a fresh
    key every step, from one base key. Metrics are batch means: `loss` (Σ_t w_t L_t with the
    configured weights), `<task>/loss`, `<task>/accuracy`.
    """
    mtl = mtl or {**strategies.MTL_DEFAULTS}
    strategy = strategies.get(mtl["strategy"])
    names = list(loss_weights)

    def task_losses(params, batch_stats, batch, rng, model):
        """Per-task mean losses (T), and (correct counts, updated batch stats)."""
        variables = {"params": model_params(params), "batch_stats": batch_stats}
        logits, updated = model.apply(variables, to_float(batch["image"]), train=True,
                                      rngs={"dropout": rng}, mutable=["batch_stats"])
        losses = jnp.stack([cross_entropy(logits[t], batch[t]).mean() for t in names])
        correct = jnp.stack([jnp.sum(jnp.argmax(logits[t], -1) == batch[t]) for t in names])
        return losses, (correct, updated.get("batch_stats", {}))

    def representation_gram(params, batch_stats, batch, rng, model):
        """G_z·G_zᵀ (T×T) of the per-task gradients of the shared representation (heads only)."""
        variables = {"params": model_params(params), "batch_stats": batch_stats}
        images = to_float(batch["image"])
        apply = lambda v: model.apply(v, images, train=True, rngs={"dropout": rng}, mutable=["batch_stats"])
        zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), jax.eval_shape(
            lambda: model.apply(variables, images, train=True, rngs={"dropout": rng},
                                mutable=["batch_stats", "perturbations"])[1]["perturbations"]))

        def losses_of(perturbations):
            logits, _ = apply({**variables, "perturbations": perturbations})
            return jnp.stack([cross_entropy(logits[t], batch[t]).mean() for t in names])

        z = jax.vmap(lambda tree: ravel_pytree(tree)[0])(jax.jacrev(losses_of)(zeros))
        return aggregators.gram(z)

    def chunk_fn(params, batch_stats, batch, rng, model, ctx, mtl_state):
        """(losses, correct, batch stats, gradient-like): the gradient of the strategy's loss, or
        the per-task gradients (a T-stacked pytree) for a gradient strategy."""
        if strategy.kind == "gradient":
            losses, vjp_fn, (correct, stats) = jax.vjp(
                lambda p: task_losses(p, batch_stats, batch, rng, model), params, has_aux=True)
            # One backward pass per task, one after another: on XLA:CPU this ran faster than
            # jax.jacrev's vmapped backward pass (benchmarks/strategy_cost.py).
            rows = [vjp_fn(jax.nn.one_hot(k, len(names), dtype=losses.dtype))[0] for k in range(len(names))]
            return losses, correct, stats, jax.tree.map(lambda *a: jnp.stack(a), *rows)

        def total(p):
            losses, aux = task_losses(p, batch_stats, batch, rng, model)
            return strategy.loss(losses, p.get("mtl", {}), mtl_state, ctx)[0], (losses, aux)

        grads, (losses, (correct, stats)) = jax.grad(total, has_aux=True)(params)
        return losses, correct, stats, grads

    def train_step(state: TrainState, batch: Mapping[str, jnp.ndarray], rng: jax.Array):
        step_rng = jax.random.fold_in(rng, state.step)
        hyper = state.hyper
        model_, tx_ = configure(hyper) if configure is not None else (model, tx)
        weights = jnp.stack([jnp.asarray(hyper.get(f"loss_weights.{t}", w), jnp.float32)
                             for t, w in loss_weights.items()])
        aug = {k: hyper.get(f"augment.{k}", v) for k, v in (augment or {}).items()}
        active = bool(aug) and (augmentation.is_active(augment) or any(f"augment.{k}" in hyper for k in aug))
        if compose is not None:
            batch = compose(batch, jax.random.fold_in(step_rng, COMPOSE_KEY), aug if active else None)
        elif active:
            images = augmentation.random_affine(to_float(batch["image"]), jax.random.fold_in(step_rng, AUGMENT_KEY),
                                                aug["shift"], aug["rotate"], aug["scale"])
            batch = {**batch, "image": images}
        # The strategy's own randomness (RLW, PCGrad) is one key per step, shared by micro-batches.
        ctx = strategies.context(jax.random.fold_in(step_rng, STRATEGY_KEY), state.step, steps_per_epoch,
                                 weights, mtl)
        size = batch["image"].shape[0]
        chunk = microbatch if 0 < microbatch < size else size
        if size % chunk:
            raise ValueError(f"batch size {size} is not a multiple of the micro-batch {chunk}")
        n_chunks = size // chunk
        if strategy.kind == "representation":
            # The full batch's Gram matrix is the sum of its micro-batches' (their z are disjoint);
            # each chunk's key is the one the gradient pass below uses, so dropout masks agree.
            chunks = jax.tree.map(lambda a: a.reshape(n_chunks, chunk, *a.shape[1:]), batch)
            keys = jnp.stack([step_rng] if n_chunks == 1 else
                             [jax.random.fold_in(step_rng, k) for k in range(n_chunks)])
            grams = jax.lax.map(lambda xs: representation_gram(state.params, state.batch_stats, xs[0], xs[1],
                                                               model_), (chunks, keys))
            ctx = {**ctx, "weights": jax.lax.stop_gradient(strategy.representation_weights(grams.sum(0)))}
        if n_chunks == 1:
            losses, correct, batch_stats, grads = chunk_fn(state.params, state.batch_stats, batch, step_rng,
                                                           model_, ctx, state.mtl)
        else:
            # A scan runs the chunks one after another, so each chunk's activations stay in cache
            # (unrolled, XLA interleaved the chunks and ran slower).
            chunks = jax.tree.map(lambda a: a.reshape(n_chunks, chunk, *a.shape[1:]), batch)
            batch_stats = state.batch_stats

            def accumulate(acc, xs):
                part, k = xs
                out = chunk_fn(state.params, state.batch_stats, part, jax.random.fold_in(step_rng, k), model_,
                               ctx, state.mtl)
                return jax.tree.map(jnp.add, acc, (out[0], out[1], out[3])), None

            first = jax.eval_shape(lambda: chunk_fn(state.params, state.batch_stats,
                                                    jax.tree.map(lambda a: a[0], chunks), step_rng, model_,
                                                    ctx, state.mtl))
            init = jax.tree.map(lambda a: jnp.zeros(a.shape, jnp.float32), (first[0], first[1], first[3]))
            (losses, correct, grads), _ = jax.lax.scan(accumulate, init, (chunks, jnp.arange(n_chunks)))
            losses, grads = losses / n_chunks, jax.tree.map(lambda g: g / n_chunks, grads)
        mtl_state = state.mtl
        if strategy.kind == "gradient":
            grads, mtl_state = combine_task_grads(strategy, grads, losses, mtl_state, ctx)
        else:
            mtl_state = strategy.loss(losses, state.params.get("mtl", {}), mtl_state, ctx)[1]
        updates, opt_state = tx_.update(grads, state.opt_state, state.params)
        updates = jax.tree.map(lambda u: u * state.plateau.scale, updates)
        params = optax.apply_updates(state.params, updates)
        # A non-finite loss or gradient leaves the state as it was (the step is skipped) and is
        # reported in the `nan/...` metrics; the trainer stops or carries on (train.nonfinite).
        loss_ok = jnp.isfinite(losses)
        grads_ok = jnp.isfinite(optax.global_norm(grads))
        ok = jnp.all(loss_ok) & grads_ok
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
        metrics = {"loss": jnp.where(ok, jnp.sum(weights * losses), 0.0)}
        for k, t in enumerate(names):
            metrics[f"{t}/loss"] = jnp.where(ok, losses[k], 0.0)
            metrics[f"{t}/accuracy"] = jnp.where(ok, correct[k] / size, 0.0)
            metrics[f"nan/{t}"] = (~loss_ok[k]).astype(jnp.float32)
        metrics.update({"nan/steps": (~ok).astype(jnp.float32), "nan/grads": (~grads_ok).astype(jnp.float32),
                        "nan/first": jnp.where(ok, NO_STEP, state.step.astype(jnp.float32))})
        ema = state.ema
        if ema_decay:
            ema = ema_update(ema, {"params": params, "batch_stats": batch_stats}, ema_decay, state.step)
        new_state = state.replace(step=state.step + 1, params=keep(params, state.params),
                                  batch_stats=keep(batch_stats, state.batch_stats),
                                  opt_state=keep(opt_state, state.opt_state), mtl=keep(mtl_state, state.mtl),
                                  ema=keep(ema, state.ema))
        return new_state, metrics

    return train_step


STRATEGY_KEY = 1_000_033  # fold_in tag of the strategies' key.
NO_STEP = float(2**24)  # "nan/first" of a finite step: above any step number (exact in float32).


def model_params(params: Mapping[str, Any]) -> dict:
    """The model's parameters: `params` without the strategy's own (`mtl`)."""
    return {k: v for k, v in params.items() if k != "mtl"}


def combine_task_grads(strategy, jac: Mapping[str, Any], losses: jnp.ndarray, mtl_state: Any, ctx: Mapping):
    """One gradient from per-task gradients (`jac`, every leaf with a leading task axis): the shared
    parameters (`backbone`) get the strategy's direction, every other subtree (the heads) the sum of
    its tasks' gradients times the strategy's head weights (a head only has its own task's)."""
    shared = jac["backbone"]
    flat = jax.vmap(lambda tree: ravel_pytree(tree)[0])(shared)
    direction, head_weights, mtl_state = strategy.aggregate(flat, losses, mtl_state, ctx)
    unravel = ravel_pytree(jax.tree.map(lambda a: a[0], shared))[1]
    grads = {name: jax.tree.map(lambda a: jnp.tensordot(head_weights, a, axes=1), sub)
             for name, sub in jac.items() if name != "backbone"}
    grads["backbone"] = unravel(direction)
    return grads, mtl_state


def make_task_gradients(model, names) -> Callable:
    """Returns `task_gradients(params, batch_stats, batch) -> G`, the T×P matrix of each task's
    mean-loss gradient with respect to the shared (`backbone`) parameters, in inference mode (no
    dropout, BatchNorm's running statistics): the input of the conflict diagnostics."""

    def task_gradients(params, batch_stats, batch):
        def losses(backbone):
            variables = {"params": {**model_params(params), "backbone": backbone}, "batch_stats": batch_stats}
            logits = model.apply(variables, to_float(batch["image"]), train=False)
            return jnp.stack([cross_entropy(logits[t], batch[t]).mean() for t in names])

        jac = jax.jacrev(losses)(params["backbone"])
        return jax.vmap(lambda tree: ravel_pytree(tree)[0])(jac)

    return task_gradients


def make_eval_step(model) -> Callable:
    """Returns `eval_step(params, batch_stats, images) -> {task: logits}` (inference mode)."""

    def eval_step(params, batch_stats, images):
        variables = {"params": model_params(params), "batch_stats": batch_stats}
        return model.apply(variables, to_float(images), train=False)

    return eval_step
