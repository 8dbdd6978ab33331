"""Task-gradient conflict diagnostics: each task's gradient with respect to the shared
parameters, their pairwise cosines and their norms relative to the mean norm."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from mtljax.data.augment import to_float
from mtljax.models import model_params
from mtljax.mtl import aggregators


def make_task_gradients(model, tasks: Mapping[str, Any]) -> Callable:
    """Returns `task_gradients(params, batch_stats, batch) -> G`, the T×P matrix of each task's
    mean-loss gradient with respect to the shared parameters (the architecture's
    `shared_params()`), in inference mode (no dropout, BatchNorm's running statistics): the input
    of the conflict diagnostics."""
    names = model.shared_params()

    def task_gradients(params, batch_stats, batch):
        def losses(shared):
            variables = {"params": {**model_params(params), **shared}, "batch_stats": batch_stats}
            outputs = model.apply(variables, to_float(batch["image"]), train=False)
            return jnp.stack([task.loss(outputs[t], batch[t]).mean() for t, task in tasks.items()])

        jac = jax.jacrev(losses)({name: params[name] for name in names if name in params})
        return jax.vmap(lambda tree: ravel_pytree(tree)[0])(jac)

    return task_gradients


def conflict_stats(g: jnp.ndarray) -> dict[str, jnp.ndarray]:
    """Diagnostics of a task-gradient matrix: the T×T cosine similarities and each gradient's norm
    over the mean norm."""
    norms = jnp.linalg.norm(g, axis=1)
    cos = aggregators.gram(g) / (norms[:, None] * norms[None, :] + aggregators.EPS)
    return {"cos": cos, "norm_ratio": norms / (jnp.mean(norms) + aggregators.EPS)}
