"""Task label functions, losses and metrics (classification and regression)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from mtljax import metrics, tasks


def test_labels_of_each_digit():
    raw = {"digit": np.arange(10, dtype=np.uint8)}
    assert list(tasks.TASKS["digit"].labels(raw)) == list(range(10))
    assert list(tasks.TASKS["parity"].labels(raw)) == [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]
    assert list(tasks.TASKS["threshold"].labels(raw)) == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]


@given(hnp.arrays(np.uint8, st.integers(1, 50), elements=st.integers(0, 9)))
def test_labels_are_in_range(digits):
    raw = {name: digits for name in ("digit", "top", "bottom", "left", "right")}
    raw["color"] = digits % 2
    for task in (tasks.get(n) for n in tasks.TASKS if tasks.get(n).kind == "classification"):
        labels = task.labels(raw)
        assert labels.dtype == np.int32 and labels.shape == digits.shape
        assert labels.min() >= 0 and labels.max() < task.outputs
        assert len(task.class_names) == task.outputs


def test_duplicate_task_name_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        tasks.TASKS.register("digit", tasks.classification(10, lambda raw: raw["digit"], tasks.DIGITS))


def test_sum_task_is_a_huber_regression_reported_as_mae_and_rmse():
    task = tasks.get("sum")
    labels = task.labels({"sum": np.array([3, 17, 0], np.float32)})
    assert task.kind == "regression" and task.outputs == 1 and labels.dtype == np.float32
    outputs = np.array([[3.5], [10.0], [-0.2]], np.float32)
    error = outputs[:, 0] - labels
    # Huber with delta 1: error²/2 within 1 of the target, |error| - 1/2 beyond.
    expected = np.where(np.abs(error) <= 1, 0.5 * error**2, np.abs(error) - 0.5)
    np.testing.assert_allclose(task.loss(outputs, labels), expected, rtol=1e-6)
    np.testing.assert_allclose(task.predict(outputs), outputs[:, 0])
    assert float(task.step_metrics(outputs, labels)["mae"]) == pytest.approx(np.abs(error).sum(), rel=1e-6)
    host = task.metrics(labels, outputs[:, 0])
    assert host == pytest.approx({"mae": np.mean(np.abs(error)), "rmse": np.sqrt(np.mean(error**2))}, rel=1e-6)
    assert task.is_right(3.4, 3.0) and not task.is_right(3.6, 3.0) and task.describe(3.04) == "3.0"


def test_metrics_by_hand():
    # true: 0 0 1 1 2 ; pred: 0 1 1 1 0
    confusion = metrics.confusion_matrix(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), 3)
    np.testing.assert_array_equal(confusion, [[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    m = metrics.classification_metrics(confusion)
    assert m["accuracy"] == pytest.approx(3 / 5)
    # precision per class: 1/2, 2/3, 0 (class 2 never predicted); recall: 1/2, 1, 0.
    assert m["precision"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    assert m["recall"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    f1 = [2 * 0.5 * 0.5 / 1.0, 2 * (2 / 3) / (5 / 3), 0.0]
    assert m["f1"] == pytest.approx(sum(f1) / 3)


@given(hnp.arrays(np.int64, st.integers(1, 40), elements=st.integers(0, 4)))
def test_perfect_predictions(labels):
    m = metrics.classification_metrics(metrics.confusion_matrix(labels, labels, 5))
    assert m["accuracy"] == 1.0
    present = len(np.unique(labels))
    # Classes never present score 0 under zero_division=0, so the macro mean is present/5.
    assert m["precision"] == pytest.approx(present / 5) and m["recall"] == pytest.approx(present / 5)
