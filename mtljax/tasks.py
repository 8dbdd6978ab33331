"""Tasks: named definitions of what each head predicts.

A task is a label function from the dataset's raw labels (a dict of integer arrays, e.g.
`{"digit": ...}`) to class indices, and a number of classes. Every task is trained with softmax
cross-entropy (binary tasks as two classes) and evaluated with the metrics in METRICS. Adding a task
is one `register(Task(...))` call.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import numpy as np

METRICS = ("loss", "accuracy", "precision", "recall", "f1")


@dataclasses.dataclass(frozen=True)
class Task:
    """One prediction target.

    Attributes:
      name: the task's name, used in configs and metric names (`name/accuracy`).
      num_classes: the head's number of outputs.
      label_fn: raw labels (dict of arrays) -> int class indices in [0, num_classes).
      class_names: a display name per class (plots and reports).
      source: the raw label it is computed from (a dataset must provide it).
    """

    name: str
    num_classes: int
    label_fn: Callable[[Mapping[str, np.ndarray]], np.ndarray]
    class_names: tuple[str, ...]
    source: str = "digit"

    def labels(self, raw: Mapping[str, np.ndarray]) -> np.ndarray:
        """This task's class indices (int32) for the raw labels `raw`."""
        return np.asarray(self.label_fn(raw), dtype=np.int32)


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Adds `task` to the registry (names are unique)."""
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


DIGITS = tuple(str(d) for d in range(10))
register(Task("digit", 10, lambda raw: raw["digit"], DIGITS))
register(Task("parity", 2, lambda raw: raw["digit"] % 2, ("even", "odd")))
register(Task("threshold", 2, lambda raw: raw["digit"] >= 5, ("<5", ">=5")))
register(Task("color", 2, lambda raw: raw["color"], ("red", "green"), source="color"))
for _position in ("top", "bottom", "left", "right"):
    register(Task(_position, 10, lambda raw, p=_position: raw[p], DIGITS, source=_position))
