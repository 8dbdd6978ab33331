"""Task label functions, losses and metrics (classification and regression)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from mtljax import config, metrics, tasks
from mtljax.train import experiment
from conftest import tiny_config


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


@settings(deadline=None, max_examples=20)  # The first example compiles.
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.05, 0.1, 0.3]))
def test_label_smoothing_is_cross_entropy_against_the_mixed_target(seed, alpha):
    """Szegedy et al. 2016, section 7: q'(k) = (1 - alpha)·[k = y] + alpha/K, loss -Σ q'(k) log p(k)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (6, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 6).astype(np.int32)
    target = (1 - alpha) * np.eye(10)[labels] + alpha / 10
    expected = -(target * scipy.special.log_softmax(logits.astype(np.float64), axis=-1)).sum(-1)
    task = tasks.get("digit")
    np.testing.assert_allclose(task.smoothed(alpha).loss(logits, labels), expected, rtol=1e-5)
    assert task.smoothed(0.0) is task and tasks.get("sum").smoothed(alpha) is tasks.get("sum")


def test_label_smoothing_trains_only(tiny_data_dir):
    """The train step's tasks carry the smoothed loss; evaluation's keep plain cross-entropy."""
    exp = experiment.build_experiment(config.resolve(tiny_config(tiny_data_dir, train={"label_smoothing": 0.2})))
    logits, labels = np.array([[4.0, 0.0], [0.0, 1.0]], np.float32), np.array([0, 1], np.int32)
    plain = exp.tasks["parity"].loss(logits, labels)
    smoothed = exp.step_spec().tasks["parity"].loss(logits, labels)
    np.testing.assert_allclose(plain, -scipy.special.log_softmax(logits, axis=-1)[[0, 1], labels], rtol=1e-5)
    np.testing.assert_allclose(smoothed, tasks.get("parity").smoothed(0.2).loss(logits, labels), rtol=1e-6)
    assert np.all(np.asarray(smoothed) > np.asarray(plain))


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
