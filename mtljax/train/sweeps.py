"""Hyper-parameter sweeps as one vmapped program: values × seeds replicas, one compile.

A sweep is the config's `sweep` section, `{dotted key: [values]}` (or `--sweep key=v1,v2,...`);
several keys make a grid. Replica r = point p × seed s (r = p·seeds + s), and every point uses the
same seeds, so points differ only in their values (common random numbers).

Only values that can be traced arguments of the train step are sweepable: they change numbers, not
shapes or program structure (SWEEPABLE). Each replica carries its values in `TrainState.hyper`, and
the step rebuilds model and optimizer from them inside the trace (`experiment.configure`). Everything
else (widths, tasks, batch size, epochs, schedule kind, ...) is refused: run one job per value.

How each key acts (all exact, not approximations):
  loss_weights.<task>   the task's weight in the summed loss;
  optimizer.lr          multiplies every update by lr / lr₀ after the optax chain, which is exactly
                        a chain built with lr for adam, adamw and sgd (each ends by scaling with the
                        learning rate); schedule floors (min_lr) scale with it;
  optimizer.weight_decay, model.dropout, model.head_dropout, augment.shift|rotate|scale
                        passed as traced values to the optimizer, model and augmentation.
"""

from __future__ import annotations

import itertools
from typing import Mapping, Sequence

import numpy as np


SWEEPABLE = ("loss_weights.<task>", "optimizer.lr", "optimizer.weight_decay", "model.dropout",
             "model.head_dropout", "augment.shift", "augment.rotate", "augment.scale")


def is_sweepable(key: str, task_names: Sequence[str]) -> bool:
    """Whether `key` may be swept in a config with tasks `task_names`."""
    section, _, name = key.partition(".")
    if section == "loss_weights":
        return name in task_names
    return key in SWEEPABLE


def parse_sweep(text: str) -> tuple[str, list[float]]:
    """`key=v1,v2,...` -> (key, [v1, v2, ...]).

    Raises:
      ValueError: not of that form, or a value is not a number.
    """
    key, sep, raw = text.partition("=")
    try:
        values = [float(v) for v in raw.split(",")] if sep and key and raw else None
    except ValueError:
        values = None
    if values is None:
        raise ValueError(f"--sweep {text!r}: expected key=v1,v2,..., e.g. loss_weights.parity=0.25,0.5,1,2,4")
    return key, values


def grid(sweep: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """The sweep's points, `{key: value}`, in row-major order of the keys as given; [{}] for none."""
    keys = list(sweep)
    return [dict(zip(keys, values)) for values in itertools.product(*(sweep[k] for k in keys))]


def replica_values(points: Sequence[Mapping[str, float]], n_seeds: int) -> dict[str, np.ndarray]:
    """Each swept key's value per replica (points × seeds, seed fastest), as float32 arrays."""
    keys = list(points[0])
    return {key: np.repeat(np.asarray([p[key] for p in points], np.float32), n_seeds) for key in keys}
