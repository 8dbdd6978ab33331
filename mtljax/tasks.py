"""Tasks: what each head predicts, and how it is trained, scored and read.

A task owns everything that depends on its kind: the raw labels it is computed from, its head's
output size, its per-example loss, the counts the train step sums (accuracy, absolute error), its
evaluation metrics and how outputs become a prediction. The train step, evaluation, summaries,
plots, `predict` and the results table all go through the task, so a new kind of target is a new
task, not edits across the package.

Two kinds are built in: `classification` (softmax cross-entropy; accuracy and macro
precision/recall/F1 from a confusion matrix) and `regression` (Huber loss on one output; MAE and
RMSE). Adding a task is one `TASKS.register(name, classification(...))` call (docs/extending.md).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mtljax import metrics
from mtljax.registry import Registry


@dataclasses.dataclass(frozen=True)
class Task:
    """One prediction target.

    Attributes:
      kind: "classification" or "regression".
      outputs: the head's number of outputs.
      label_fn: raw labels (dict of arrays) -> this task's labels.
      sources: the raw labels it is computed from (a dataset must provide all of them).
      loss: (head outputs B×outputs, labels B) -> per-example losses B.
      predict: head outputs -> per-example predictions (class index or value).
      step_metrics: (outputs, labels) -> {metric: sum over the batch}, with the keys
        `train_metrics`; the train step reports each sum over the batch size.
      metrics: (truth, predictions) on the host -> {metric: value} (numpy).
      metric_names: every metric the task reports, `loss` first.
      headline: the metric tables and log lines show; `higher_is_better` says its direction.
      label_dtype: dtype of the labels.
      class_names: a display name per class (classification only).
    """

    kind: str
    outputs: int
    label_fn: Callable[[Mapping[str, np.ndarray]], np.ndarray]
    sources: tuple[str, ...]
    loss: Callable
    predict: Callable
    step_metrics: Callable
    train_metrics: tuple[str, ...]
    metrics: Callable
    metric_names: tuple[str, ...]
    headline: str
    higher_is_better: bool
    label_dtype: type
    class_names: tuple[str, ...] = ()

    def labels(self, raw: Mapping[str, np.ndarray]) -> np.ndarray:
        """This task's labels for the raw labels `raw`."""
        return np.asarray(self.label_fn(raw), dtype=self.label_dtype)

    def describe(self, value) -> str:
        """A label or prediction as text: the class name, or the value."""
        return self.class_names[int(value)] if self.kind == "classification" else f"{float(value):.1f}"

    def is_right(self, prediction, label) -> bool:
        """Whether a prediction counts as right: the class, or the value within 0.5."""
        if self.kind == "classification":
            return int(prediction) == int(label)
        return abs(float(prediction) - float(label)) < 0.5

    def smoothed(self, alpha: float) -> "Task":
        """This task trained with label smoothing `alpha` (classification; a regression task is
        returned as it is): cross-entropy against (1 - alpha)·one_hot(label) + alpha/K (Szegedy et
        al. 2016, "Rethinking the Inception Architecture", section 7). Only the train step uses it;
        evaluation losses stay plain cross-entropy."""
        if self.kind != "classification" or alpha == 0:
            return self

        def loss(logits, labels):
            target = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype), alpha)
            return optax.softmax_cross_entropy(logits, target)

        return dataclasses.replace(self, loss=loss)

    def format(self, value: float) -> str:
        """The headline metric as shown in log lines: accuracy in %, errors as numbers."""
        return format_metric(self.headline, value) + ("%" if self.headline == "accuracy" else "")


def format_metric(metric: str, value: float) -> str:
    """A metric's value as shown: accuracy, precision, recall and F1 in % (no sign), errors as
    plain numbers."""
    return f"{100 * value:.2f}" if metric in ("accuracy", "precision", "recall", "f1") else f"{value:.3f}"


def _cross_entropy(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def _argmax(logits):
    return jnp.argmax(logits, -1)


def classification(num_classes: int, label_fn: Callable, class_names: tuple[str, ...],
                   sources: tuple[str, ...] = ("digit",)) -> Task:
    """A classification task trained with softmax cross-entropy (binary tasks as two classes)."""

    def host_metrics(truth, preds):
        return metrics.classification_metrics(metrics.confusion_matrix(truth, preds, num_classes))

    return Task(kind="classification", outputs=num_classes, label_fn=label_fn, sources=tuple(sources),
                loss=_cross_entropy, predict=_argmax,
                step_metrics=lambda logits, labels: {"accuracy": jnp.sum(_argmax(logits) == labels)},
                train_metrics=("accuracy",),
                metrics=host_metrics, metric_names=("loss", "accuracy", "precision", "recall", "f1"),
                headline="accuracy", higher_is_better=True, label_dtype=np.int32, class_names=tuple(class_names))


def regression(label_fn: Callable, sources: tuple[str, ...], delta: float = 1.0) -> Task:
    """A scalar regression task: one output, trained with the Huber loss (quadratic within `delta`
    of the target, linear beyond, so early large errors do not swamp the other tasks' gradients);
    reported as mean absolute and root-mean-square error."""

    def loss(outputs, labels):
        return optax.huber_loss(outputs[..., 0], labels, delta=delta)

    def step_metrics(outputs, labels):
        return {"mae": jnp.sum(jnp.abs(outputs[..., 0] - labels))}

    return Task(kind="regression", outputs=1, label_fn=label_fn, sources=tuple(sources), loss=loss,
                predict=lambda outputs: outputs[..., 0], step_metrics=step_metrics, train_metrics=("mae",),
                metrics=metrics.regression_metrics, metric_names=("loss", "mae", "rmse"),
                headline="mae", higher_is_better=False, label_dtype=np.float32)


TASKS = Registry("task")

DIGITS = tuple(str(d) for d in range(10))
TASKS.register("digit", classification(10, lambda raw: raw["digit"], DIGITS))
TASKS.register("parity", classification(2, lambda raw: raw["digit"] % 2, ("even", "odd")))
TASKS.register("threshold", classification(2, lambda raw: raw["digit"] >= 5, ("<5", ">=5")))
TASKS.register("color", classification(2, lambda raw: raw["color"], ("red", "green"), sources=("color",)))
for _position in ("top", "bottom", "left", "right"):
    TASKS.register(_position, classification(10, lambda raw, p=_position: raw[p], DIGITS, sources=(_position,)))
# The sum of the two digits of a two-digit (top + bottom) or MultiMNIST (left + right) image.
TASKS.register("sum", regression(lambda raw: raw["sum"], sources=("sum",)))


class LabelError(ValueError):
    """A label outside a declared task's classes: the item's index and the value."""

    def __init__(self, index: int, value):
        super().__init__(f"item {index}: {value!r}")
        self.index, self.value = index, value


COLUMN_KINDS = ("classification", "regression")


def column_spec(spec) -> dict:
    """A task declared in the config (`columns.<task>`) in full: {"column", "kind", "classes"}; a
    string is the column of a classification task whose classes are read from the data."""
    spec = {"column": spec} if isinstance(spec, str) else dict(spec)
    return {"column": spec.get("column"), "kind": spec.get("kind", "classification"), "classes": spec.get("classes")}


def _class_values(classes) -> tuple:
    return tuple(range(classes)) if isinstance(classes, int) else tuple(classes)


@functools.lru_cache(maxsize=None)
def _declared(column: str, kind: str, classes: tuple | None) -> Task:
    if kind == "regression":
        return regression(lambda raw: raw[column], sources=(column,))
    lookup = {value: k for k, value in enumerate(classes)}

    def label_fn(raw):
        values = raw[column].tolist()
        try:
            return np.array([lookup[v] for v in values], np.int32)
        except KeyError:
            bad = next(i for i, v in enumerate(values) if v not in lookup)
            raise LabelError(bad, values[bad]) from None

    return classification(len(classes), label_fn, tuple(map(str, classes)), sources=(column,))


def get(name: str, cfg: Mapping | None = None) -> Task:
    """The task `name`: declared in `cfg`'s `columns` (a label column of the data, classified or
    regressed), else the one registered under that name."""
    declared = (cfg or {}).get("columns", {})
    if name in declared:
        spec = column_spec(declared[name])
        classes = _class_values(spec["classes"]) if spec["kind"] == "classification" else None
        return _declared(spec["column"], spec["kind"], classes)
    return TASKS[name]
