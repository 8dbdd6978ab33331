"""What the training loop watches: means over replicas (seeds × sweep points), each replica's best
state, early stopping and the task-gradient conflict diagnostics."""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from mtljax.data import compose
from mtljax.data.augment import to_float
from mtljax.models import model_params
from mtljax.mtl import diagnostics
from mtljax.train import parallel


def seed_mean(per_seed: list[Mapping[str, float]]) -> dict[str, float]:
    """The mean over replicas of every metric (for one replica: its own values, exactly)."""
    return {key: float(np.mean([m[key] for m in per_seed])) if len(per_seed) > 1 else per_seed[0][key]
            for key in per_seed[0]}


@jax.jit
def select_seeds(mask: np.ndarray, new: Any, old: Any) -> Any:
    """Per replica (leading axis), `new` where `mask` else `old` (jitted: on many processes a host
    mask cannot meet global arrays outside a jit)."""
    return jax.tree.map(lambda a, b: jnp.where(mask.reshape(-1, *[1] * (a.ndim - 1)), a, b), new, old)


class EarlyStopping:
    """Tracks the monitored metric: best value, best epoch and epochs without improvement."""

    def __init__(self, mode: str, patience: int, best: float | None = None, best_epoch: int = 0,
                 bad_epochs: int = 0):
        self.mode, self.patience = mode, patience
        self.best = best if best is not None else (math.inf if mode == "min" else -math.inf)
        self.best_epoch, self.bad_epochs = best_epoch, bad_epochs

    def update(self, value: float, epoch: int) -> bool:
        """Records `value` for `epoch`; returns True when it is the best so far."""
        improved = value < self.best if self.mode == "min" else value > self.best
        if improved:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience

    def state(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}


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


def make_diagnostics(exp: Any, train_data: Mapping[str, jax.Array]) -> Callable[[Any], dict]:
    """`diagnose(state) -> {key: value}`: task-gradient conflict on the first `mtl.diagnose_batch`
    training images (the same ones every time), per replica: `conflict/cos/<a>|<b>` for each pair of
    tasks and `conflict/norm_ratio/<t>` (‖g_t‖ over the mean norm), as lists over replicas."""
    names = list(exp.tasks)
    n = min(exp.cfg["mtl"]["diagnose_batch"], len(exp.splits["train"]))
    batch = {key: value[:n] for key, value in train_data.items()}
    stack = compose.composer(exp.cfg["data"])
    if stack is not None:  # Training parts (mtljax/data/compose.py): the stored pairs, unwarped.
        batch = stack(batch, None, None)
    grads_fn = make_task_gradients(exp.model, exp.tasks)
    fn = jax.jit(jax.vmap(lambda p, s, b: diagnostics.conflict_stats(grads_fn(p, s, b)), in_axes=(0, 0, None)))

    def diagnose(state):
        stats = parallel.host_value(fn(state.params, state.batch_stats, batch))
        out = {f"conflict/norm_ratio/{t}": stats["norm_ratio"][:, i].tolist() for i, t in enumerate(names)}
        for i, j in itertools.combinations(range(len(names)), 2):
            out[f"conflict/cos/{names[i]}|{names[j]}"] = stats["cos"][:, i, j].tolist()
        return out

    return diagnose
