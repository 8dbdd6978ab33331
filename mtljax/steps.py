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

from mtljax import augment as augmentation


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
    """

    step: jnp.ndarray
    params: Any
    batch_stats: Any
    opt_state: Any
    plateau: Any
    hyper: Any = flax.struct.field(default_factory=dict)


def to_float(images: jnp.ndarray) -> jnp.ndarray:
    """uint8 pixels to float32 in [0, 1]; float images (already converted) pass through."""
    return images if jnp.issubdtype(images.dtype, jnp.floating) else images.astype(jnp.float32) / 255.0


AUGMENT_KEY = 1_000_003  # fold_in tag of the augmentation key; micro-batch indices are small.


def create_state(model, tx: optax.GradientTransformation, plateau, rng: jax.Array,
                 image_shape: tuple[int, ...]) -> TrainState:
    """Initialises parameters with `rng` and the optimizer and plateau states."""
    variables = model.init(rng, jnp.zeros((1, *image_shape), jnp.float32), train=False)
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
        plateau=plateau.init(jnp.zeros(())),
    )


def cross_entropy(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
    """Per-example softmax cross-entropy with integer labels."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def make_train_step(model, tx: optax.GradientTransformation, loss_weights: Mapping[str, float],
                    microbatch: int = 0, augment: Mapping[str, float] | None = None,
                    configure: Callable | None = None) -> Callable:
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
        affine map (mtljax/augment.py) under the key `fold_in(step key, AUGMENT_KEY)`.
      configure: for sweeps, `hyper -> (model, tx)` builds both from the replica's traced values
        `state.hyper` inside the trace; swept `loss_weights.<task>` and `augment.<key>` are read
        from `state.hyper` directly. None: `model` and `tx` as given.

    The dropout key is `fold_in(rng, state.step)` (then folded with the micro-batch index): a fresh
    key every step, from one base key. Metrics are batch means: `loss`, `<task>/loss`,
    `<task>/accuracy`.
    """

    def chunk_loss(params, batch_stats, batch, rng, model, weights):
        variables = {"params": params, "batch_stats": batch_stats}
        logits, updated = model.apply(variables, to_float(batch["image"]), train=True,
                                      rngs={"dropout": rng}, mutable=["batch_stats"])
        sums = {t: cross_entropy(logits[t], batch[t]).sum() for t in loss_weights}
        correct = {t: jnp.sum(jnp.argmax(logits[t], -1) == batch[t]) for t in loss_weights}
        total = sum(w * sums[t] for t, w in weights.items())
        return total, (sums, correct, updated.get("batch_stats", {}))

    grad_fn = jax.value_and_grad(chunk_loss, has_aux=True)

    def train_step(state: TrainState, batch: Mapping[str, jnp.ndarray], rng: jax.Array):
        step_rng = jax.random.fold_in(rng, state.step)
        hyper = state.hyper
        model_, tx_ = configure(hyper) if configure is not None else (model, tx)
        weights = {t: hyper.get(f"loss_weights.{t}", w) for t, w in loss_weights.items()}
        aug = {k: hyper.get(f"augment.{k}", v) for k, v in (augment or {}).items()}
        if aug and (augmentation.is_active(augment) or any(f"augment.{k}" in hyper for k in aug)):
            images = augmentation.random_affine(to_float(batch["image"]), jax.random.fold_in(step_rng, AUGMENT_KEY),
                                                aug["shift"], aug["rotate"], aug["scale"])
            batch = {**batch, "image": images}
        size = batch["image"].shape[0]
        chunk = microbatch if 0 < microbatch < size else size
        if size % chunk:
            raise ValueError(f"batch size {size} is not a multiple of the micro-batch {chunk}")
        n_chunks = size // chunk
        if n_chunks == 1:
            (total, (sums, correct, batch_stats)), grads = grad_fn(state.params, state.batch_stats, batch,
                                                                   step_rng, model_, weights)
            totals = (total, sums, correct, grads)
        else:
            # A scan runs the chunks one after another, so each chunk's activations stay in cache
            # (unrolled, XLA interleaved the chunks and ran slower).
            chunks = jax.tree.map(lambda a: a.reshape(n_chunks, chunk, *a.shape[1:]), batch)
            batch_stats = state.batch_stats

            def accumulate(acc, xs):
                part, k = xs
                (total, (sums, correct, _)), grads = grad_fn(state.params, state.batch_stats, part,
                                                             jax.random.fold_in(step_rng, k), model_, weights)
                return jax.tree.map(jnp.add, acc, (total, sums, correct, grads)), None

            zero = lambda tree: jax.tree.map(lambda a: jnp.zeros(a.shape, jnp.float32), tree)
            init = (jnp.zeros(()), {t: jnp.zeros(()) for t in loss_weights},
                    {t: jnp.zeros(()) for t in loss_weights}, zero(state.params))
            totals, _ = jax.lax.scan(accumulate, init, (chunks, jnp.arange(n_chunks)))
        total, sums, correct, grads = jax.tree.map(lambda v: v / size, totals)
        updates, opt_state = tx_.update(grads, state.opt_state, state.params)
        updates = jax.tree.map(lambda u: u * state.plateau.scale, updates)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": total}
        for t in loss_weights:
            metrics[f"{t}/loss"] = sums[t]
            metrics[f"{t}/accuracy"] = correct[t]
        new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                                  opt_state=opt_state)
        return new_state, metrics

    return train_step


def make_eval_step(model) -> Callable:
    """Returns `eval_step(params, batch_stats, images) -> {task: logits}` (inference mode)."""

    def eval_step(params, batch_stats, images):
        variables = {"params": params, "batch_stats": batch_stats}
        return model.apply(variables, to_float(images), train=False)

    return eval_step
