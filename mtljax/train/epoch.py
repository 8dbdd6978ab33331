"""One epoch on device: the jitted train call (K steps in a `lax.scan`, metrics summed on device)
and the jitted evaluation call, both vmapped over replicas (seeds × sweep points)."""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from mtljax import data
from mtljax.train import experiment, parallel, sweeps
from mtljax.train.experiment import Experiment, resolve_eval_batch
from mtljax.train.state import TrainState
from mtljax.train.step import NO_STEP, at_ray, lookahead_batch, make_train_step, step_metric_names


def make_epoch_fns(exp: Experiment):
    """Jitted `train(state, sums, data, idx, rng)` and `evaluate(params, stats, images, labels)`,
    vmapped over the leading replica axis (seeds × sweep points) of state, sums, idx (R×K×batch)
    and rng (`train_call`, `evaluation`). State and sums are donated; data are shared."""
    options = experiment.compiler_options()
    mode = experiment.resolve_replicas(exp.cfg)
    return (jax.jit(parallel.over_replicas(train_call(exp), (0, 0, None, 0, 0), mode), donate_argnums=(0, 1),
                    compiler_options=options),
            jax.jit(parallel.over_replicas(evaluation(exp), (0, 0, None, None), mode), compiler_options=options))


def train_call(exp: Experiment):
    """`train(state, sums, data, idx, rng)` of one replica: one step per row of `idx` (a K×batch
    index matrix) inside a `lax.scan`, each gathering its batch from the device-resident `data` and
    adding its metrics into `sums`, so metrics leave the device once per epoch and a call of several
    steps costs one dispatch. A row of -1 is no step at all (`pad_chunk`: the epoch's last call is
    padded to K rows, so one program serves every call)."""
    spec = exp.step_spec()
    train_step = make_train_step(spec)

    def train(state, sums, dataset, idx, rng):
        # A bilevel method's look-ahead items: the validation split (`lookahead_data`), or the training split.
        look = dataset.get("lookahead")
        dataset = {k: v for k, v in dataset.items() if k != "lookahead"}
        look = dataset if look is None else look

        def step(carry, batch_idx):
            state, sums = carry
            batch = jax.tree.map(lambda a: a[batch_idx], dataset)
            if spec.lookahead is not None:
                batch = {**batch, "lookahead": lookahead_batch(look, rng, state.step, batch_idx.shape[0])}
            state, step_metrics = train_step(state, batch, rng)
            return state, accumulate(sums, step_metrics)

        def one_step(carry, batch_idx):
            # Padding rows leave the carry as it was (under a vmap over seeds: computed, then discarded).
            return jax.lax.cond(batch_idx[0] >= 0, step, lambda carry, _: carry, carry, batch_idx), None

        if idx.shape[0] == 1:  # No loop at all: XLA's own conv slows down inside one on CPU.
            return step((state, sums), idx[0])
        (state, sums), _ = jax.lax.scan(one_step, (state, sums), idx)
        return state, sums

    return train


def evaluation(exp: Experiment, preference=None):
    """`evaluate(params, stats, images, labels)` of one replica: per-example losses, predictions and
    head outputs (logits) of a block of examples (`eval_data` cuts splits into blocks of one size),
    as a `lax.map` over chunks of `train.eval_batch_size` (on CPU small chunks stay in cache). A
    preference-conditioned model is evaluated at `preference` (default: the config's,
    `sweeps.eval_preference`)."""
    preference = sweeps.eval_preference(exp.cfg) if preference is None else preference
    tasks = exp.tasks
    eval_chunk = resolve_eval_batch(exp.cfg)

    def evaluate(params, batch_stats, images, labels):
        params, eval_step = at_ray(exp.model, params, images, preference)

        def one(example):
            image, label = example
            outputs = eval_step(params, batch_stats, image[None])
            return {t: (tasks[t].loss(outputs[t], label[t][None])[0], tasks[t].predict(outputs[t])[0], outputs[t][0])
                    for t in label}

        return jax.lax.map(one, (images, labels), batch_size=eval_chunk)

    return evaluate


def zero_sums(tasks: Mapping[str, Any], n_replicas: int) -> dict[str, jax.Array]:
    """Zeroed per-replica accumulators of the train step's metrics (`step.step_metric_names`): `loss`,
    `<task>/loss` and each task's step metrics, and the non-finite counts `nan/steps`,
    `nan/grads`, `nan/<task>` and first step `nan/first`."""
    return reset_sums({key: jnp.zeros((n_replicas,)) for key in step_metric_names(tasks)})


def reset_sums(sums: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """`sums` set back to their start (0; `nan/first` to NO_STEP), keeping their shapes and placement."""
    return {k: jnp.full_like(v, NO_STEP if k == "nan/first" else 0.0) for k, v in sums.items()}


def accumulate(sums: Mapping[str, jax.Array], metrics: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Adds a step's metrics into the sums (`nan/first` keeps the minimum: the first bad step)."""
    return {k: jnp.minimum(v, metrics[k]) if k == "nan/first" else v + metrics[k] for k, v in sums.items()}


def epoch_lrs(exp: Experiment, state: TrainState) -> list[float]:
    """Each replica's learning rate at the start of an epoch (schedule × plateau × sweep factor)."""
    n = len(exp.seeds)
    base = exp.cfg["optimizer"]["lr"]
    factor = parallel.host_value(state.hyper["optimizer.lr"]) / base if "optimizer.lr" in state.hyper else np.ones(n)
    step, scale = parallel.host_value((state.step, state.plateau.scale))
    return [float(exp.schedule(step[k])) * float(scale[k]) * float(factor[k]) for k in range(n)]


def epoch_chunks(steps_per_epoch: int, chunk: int) -> list[tuple[int, int]]:
    """(first step, number of steps) of each train call in an epoch: full chunks, then the rest."""
    return [(start, min(chunk, steps_per_epoch - start)) for start in range(0, steps_per_epoch, chunk)]


def pad_chunk(idx: np.ndarray, rows: int) -> np.ndarray:
    """A call's S×n×batch index array padded with rows of -1 (no step) to S×rows×batch: every call
    of an epoch then has one shape, so the last, shorter one compiles nothing new."""
    pad = np.full((idx.shape[0], rows - idx.shape[1], idx.shape[2]), -1, idx.dtype)
    return np.concatenate([idx, pad], axis=1) if rows > idx.shape[1] else idx


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The training order of `epoch`: a function of (seed, epoch) only, so resume replays it."""
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int32)


def lookahead_data(exp: Experiment) -> dict[str, jax.Array] | None:
    """The validation split on device, where a bilevel method takes its look-ahead batches from
    it (`lookahead: "val"`); else None."""
    return device_split(exp.splits["val"]) if exp.step_spec().lookahead == "val" else None


def device_split(split: data.Split) -> dict[str, jax.Array]:
    """A split as one dict of device arrays: `image` (uint8) and one label array per task."""
    return {"image": jnp.asarray(split.images), **{t: jnp.asarray(y) for t, y in split.labels.items()}}
