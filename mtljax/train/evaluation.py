"""Evaluation of a split: device blocks of one size, per-example losses and predictions on device,
each task's metrics on the host (`Task.metrics`)."""

from __future__ import annotations

import concurrent.futures
import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from mtljax import data
from mtljax.train import parallel
from mtljax.train.experiment import Experiment
from mtljax.train.state import TrainState, eval_variables


EVAL_BLOCK = 2048  # Most examples per evaluation call (a multiple of the CPU's eval chunk of 32).
MIN_EVAL_BLOCK = 256  # Fewest examples per call when the splits need several calls.
# Blocks evaluated at once on a CPU, each call on its own thread: one call keeps ~1.75 of 2 cores
# busy (its small per-chunk matmuls), two keep both (the speedrun's test split: 4.4-4.9 -> 3.3-3.9 s).
CPU_EVAL_THREADS = 2


def eval_block(exp: Experiment) -> int:
    """Examples per evaluation call. Validation and test are cut into blocks of this one size, so
    one program evaluates both; the last block of each is padded. The size pads least: the
    largest split itself when it fits in EVAL_BLOCK, else the multiple of 32 between
    MIN_EVAL_BLOCK and EVAL_BLOCK with the fewest padded examples in all (the largest on a tie).
    A validation split of 100 beside MNIST's 10,000 test images then costs 288 examples per
    evaluation, not 2048."""
    sizes = [len(exp.splits[name]) for name in ("val", "test")]
    if max(sizes) <= EVAL_BLOCK:
        return max(sizes)
    blocks = range(min(MIN_EVAL_BLOCK, EVAL_BLOCK), EVAL_BLOCK + 1, 32)
    padded = {b: sum(-(-n // b) * b for n in sizes) for b in blocks}
    return min(padded, key=lambda b: (padded[b], -b))


@dataclasses.dataclass(frozen=True)
class EvalData:
    """A split as `evaluate_split` takes it, prepared once: device blocks of `eval_block` examples
    (images and labels, the last block padded with zeros), the labels on the host, the true size."""

    blocks: list[dict[str, jax.Array]]
    truth: dict[str, np.ndarray]
    size: int


def eval_data(split: data.Split, exp: Experiment, mesh=None) -> EvalData:
    """`split` cut into `eval_block(exp)`-sized device blocks (replicated over `mesh`, if any)."""
    block = eval_block(exp)
    host = {"image": np.asarray(split.images), **{t: np.asarray(split.labels[t]) for t in exp.loss_weights}}
    size = len(host["image"])
    pad = -size % block
    padded = {k: np.concatenate([v, np.zeros((pad, *v.shape[1:]), v.dtype)]) if pad else v for k, v in host.items()}
    blocks = [parallel.replicate(jax.tree.map(jnp.asarray, {k: v[start:start + block] for k, v in padded.items()}), mesh)
              for start in range(0, size + pad, block)]
    return EvalData(blocks, {t: host[t] for t in exp.loss_weights}, size)


def evaluate_split(evaluate: Callable, state: TrainState, split: EvalData, exp: Experiment
                   ) -> tuple[list[dict[str, float]], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per seed, the metrics (`task/metric` and `loss`); each task's predictions (S×N); and each
    task's head outputs (S×N×C: a classification task's logits).

    `evaluate` runs one block per call; the padding is cut off here. `loss` weighs the task losses
    with the configured weights (a loss-weight sweep: each replica's own)."""
    params, batch_stats = eval_variables(state)
    call = lambda part: evaluate(params, batch_stats, part["image"], {t: part[t] for t in exp.loss_weights})
    if jax.default_backend() == "cpu" and len(split.blocks) > 1:  # Each block's result is the same either way.
        with concurrent.futures.ThreadPoolExecutor(CPU_EVAL_THREADS, thread_name_prefix="evaluate") as pool:
            outs = list(pool.map(lambda part: jax.block_until_ready(call(part)), split.blocks))
    else:
        outs = [call(part) for part in split.blocks]
    n, truth = split.size, split.truth
    out = {t: [np.concatenate([parallel.host_value(o[t][i]) for o in outs], axis=1)[:, :n] for i in (0, 1, 2)]
           for t in exp.loss_weights}
    hyper = parallel.host_value(state.hyper)
    preds = {t: out[t][1] for t in exp.loss_weights}
    per_seed = []
    for k in range(len(out[next(iter(out))][0])):
        results = {}
        for t, task in exp.tasks.items():
            results[f"{t}/loss"] = float(np.sum(out[t][0][k], dtype=np.float64)) / n
            results.update({f"{t}/{m}": v for m, v in task.metrics(truth[t], preds[t][k]).items()})
        weights = {t: float(hyper[f"loss_weights.{t}"][k]) if f"loss_weights.{t}" in hyper else w
                   for t, w in exp.loss_weights.items()}
        results["loss"] = sum(w * results[f"{t}/loss"] for t, w in weights.items())
        per_seed.append(results)
    return per_seed, preds, {t: out[t][2] for t in exp.loss_weights}
