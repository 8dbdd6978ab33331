"""Calibration: ECE on hand-made cases and against a second, independent binning; the fitted
temperature against a brute-force NLL grid; AUROC against a pairwise count; and a run fits its
temperatures on the validation split, never on test."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mtljax import calibration, config, data, evaluate
from mtljax.outputs import rundir


@pytest.mark.parametrize("confidence, correct, expected", [
    ([1.0, 1.0, 1.0], [1, 1, 1], 0.0),                    # Sure and right.
    ([0.8] * 5, [1, 1, 1, 1, 0], 0.0),                    # 80 % sure, 80 % right.
    ([0.9, 0.9], [0, 0], 0.9),                            # Sure and wrong.
    ([0.95, 0.95, 0.55, 0.55], [1, 0, 1, 1], 0.45),       # Two bins: |0.5 - 0.95|/2 + |1 - 0.55|/2.
    ([0.0, 1 / 15], [1, 1], 1 - 1 / 30),                  # 0 and 1/15 share the first bin (0, 1/15].
    ([0.6, 0.7], [1, 0], 0.5 * 0.4 + 0.5 * 0.7),          # Separate bins: (8/15, 9/15] and (10/15, 11/15].
])
def test_ece_hand_made(confidence, correct, expected):
    assert calibration.ece(np.array(confidence), np.array(correct)) == pytest.approx(expected, abs=1e-12)


def _ece_digitize(confidence, correct, bins):
    """ECE with np.digitize's right-closed bins: an independent route to the same binning."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.maximum(np.digitize(confidence, edges[1:-1], right=True), 0)
    return sum(np.mean(which == m) * abs(correct[which == m].mean() - confidence[which == m].mean())
               for m in range(bins) if np.any(which == m))


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 300), st.sampled_from([1, 10, 15]))
def test_ece_matches_an_independent_binning(seed, n, bins):
    rng = np.random.default_rng(seed)
    confidence = rng.choice([rng.uniform(size=n), np.round(rng.uniform(size=n) * bins) / bins])  # Edges too.
    correct = rng.uniform(size=n) < confidence
    assert calibration.ece(confidence, correct, bins) == pytest.approx(_ece_digitize(confidence, correct, bins), abs=1e-12)


def test_fitted_temperature_minimises_nll_on_a_grid():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 10)) * 2
    labels = np.array([rng.choice(10, p=p) for p in calibration.softmax(true_logits)])
    logits = 3.0 * true_logits  # An over-confident model: the right temperature is about 3.
    t = calibration.fit_temperature(logits, labels)
    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 4001))
    nlls = [calibration.nll(logits, labels, g) for g in grid]
    assert calibration.nll(logits, labels, t) <= min(nlls) + 1e-9
    assert abs(np.log(t) - np.log(grid[int(np.argmin(nlls))])) < 2e-3
    assert t == pytest.approx(3.0, rel=0.1)
    # Scaling never changes the predicted class, and the calibrated ECE is the smaller.
    before, after = calibration.top_label(logits, labels), calibration.top_label(logits, labels, t)
    np.testing.assert_array_equal(before[1], after[1])
    assert calibration.ece(*after) < calibration.ece(*before)


@pytest.mark.parametrize("confidence, correct, expected", [
    ([0.9, 0.8, 0.3, 0.2], [1, 1, 0, 0], 1.0),
    ([0.9, 0.8, 0.3, 0.2], [0, 0, 1, 1], 0.0),
    ([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0], 0.5),
    ([0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0], 7 / 8),  # Pairs: (0.9>0.5, 0.9>0.1, 0.5=0.5 half, 0.5>0.1).
])
def test_auroc_hand_made(confidence, correct, expected):
    assert calibration.auroc(np.array(confidence), np.array(correct, bool)) == pytest.approx(expected)


def test_auroc_matches_a_pairwise_count_and_is_nan_without_both_kinds():
    rng = np.random.default_rng(1)
    confidence = np.round(rng.uniform(size=200), 2)  # Ties included.
    correct = rng.uniform(size=200) < confidence
    right, wrong = confidence[correct], confidence[~correct]
    pairwise = np.mean((right[:, None] > wrong[None, :]) + 0.5 * (right[:, None] == wrong[None, :]))
    assert calibration.auroc(confidence, correct) == pytest.approx(pairwise)
    assert np.isnan(calibration.auroc(confidence, np.ones(200, bool)))


def test_a_run_fits_its_temperatures_on_validation_never_on_test(calibrated_run, tmp_path):
    """Every label array the fit saw is the validation split's (100 examples here; test has 200),
    and calibration.json holds what it returned, one temperature per seed and task."""
    run_dir = shutil.copytree(calibrated_run.run_dir, tmp_path / "run")
    tasks = calibrated_run.config["tasks"]
    splits = data.build_splits(config.load_run_config(run_dir))
    assert len(splits["val"]) != len(splits["test"])
    assert len(calibrated_run.seen) == 3 * len(tasks)
    for k, labels in enumerate(calibrated_run.seen):
        np.testing.assert_array_equal(labels, np.asarray(splits["val"].labels[tasks[k % len(tasks)]]))
    record = rundir.read_json(run_dir / calibration.CALIBRATION_FILE)
    assert [sorted(s) for s in record["seeds"]] == [sorted(tasks)] * 3
    assert calibration.temperatures(run_dir, 1) == {t: v["temperature"] for t, v in record["seeds"][1].items()}
    summary = rundir.read_json(run_dir / rundir.SUMMARY_FILE)
    assert summary["calibration"] == record["mean"]
    # Refitting from the checkpoint (`evaluate --calibrate`, for older runs) gives the same record.
    (run_dir / calibration.CALIBRATION_FILE).unlink()
    assert evaluate.main([str(run_dir), "--calibrate"]) == 0
    assert rundir.read_json(run_dir / calibration.CALIBRATION_FILE) == record
