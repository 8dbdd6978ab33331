"""Honest confidence: temperature scaling, expected calibration error and AUROC.

Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks", §4.2) divides a
classifier's logits by one scalar T > 0 per task, fitted by minimising the negative log-likelihood
on the validation split; the predicted class never changes, only how sure the model says it is.
The expected calibration error (Naeini et al. 2015; Guo et al. 2017, Eq. 3) bins the predictions
by confidence into M equal-width bins and weighs each bin's |accuracy − mean confidence| by its
share of the examples. AUROC measures how well confidence separates right answers from wrong ones:
the probability that a random right answer is more confident than a random wrong one (ties count
half; Mann–Whitney).

A run stores its temperatures (one per seed and classification task) in `calibration.json`,
fitted when training ends; `python -m mtljax.evaluate RUN_DIR --calibrate` fits them for a run
made before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

CALIBRATION_FILE = "calibration.json"
BINS = 15  # Guo et al.'s M.


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Class probabilities of N×C logits at `temperature` (float64)."""
    scaled = np.asarray(logits, np.float64) / temperature
    exp = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error: Σ_m |B_m|/n · |acc(B_m) − conf(B_m)| over `bins` equal-width
    bins of (0, 1] (bin m holds confidences in ((m−1)/M, m/M]; a confidence of 0 joins the first)."""
    confidence, correct = np.asarray(confidence, np.float64), np.asarray(correct, np.float64)
    if confidence.size == 0:
        raise ValueError("ece of no predictions")
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for m in range(bins):
        inside = which == m
        if inside.any():
            total += inside.sum() / confidence.size * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def top_label(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Each example's confidence (its largest probability) and whether its top class is right."""
    probs = softmax(logits, temperature)
    return probs.max(axis=-1), probs.argmax(axis=-1) == np.asarray(labels)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of `labels` under softmax(logits / temperature)."""
    scaled = np.asarray(logits, np.float64) / temperature
    top = scaled.max(axis=-1, keepdims=True)
    log_probs = scaled - top - np.log(np.exp(scaled - top).sum(axis=-1, keepdims=True))
    return float(-np.mean(log_probs[np.arange(len(labels)), np.asarray(labels)]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, iterations: int = 100) -> float:
    """The T in [0.05, 20] that minimises `nll(logits, labels, T)` (Guo et al. 2017, §4.2).

    Newton's method on β = 1/T, in which the NLL is convex: with p = softmax(βz), its derivative is
    mean(E_p[z] − z_y) and its second derivative mean(Var_p[z]) ≥ 0. The derivative's sign narrows
    a bracket around the optimum, and a step that leaves it bisects instead. (NumPy rather than
    scipy.optimize: every run calls this, and importing scipy would add ~0.3 s to each.)
    """
    z, labels = np.asarray(logits, np.float64), np.asarray(labels)
    z_true = z[np.arange(len(labels)), labels]
    low, high, beta = 1 / 20.0, 1 / 0.05, 1.0
    for _ in range(iterations):
        p = softmax(z, 1 / beta)
        mean = (p * z).sum(axis=-1)
        grad, curvature = np.mean(mean - z_true), np.mean((p * z * z).sum(axis=-1) - mean ** 2)
        low, high = (low, beta) if grad > 0 else (beta, high)
        step = beta - grad / curvature if curvature > 0 else -1.0
        beta = step if low < step < high else (low + high) / 2
        if abs(grad) < 1e-12 or high - low < 1e-12 * high:
            break
    return float(1 / beta)


def auroc(confidence: np.ndarray, correct: np.ndarray) -> float:
    """P(confidence of a random right answer > that of a random wrong one), ties counting half;
    NaN when all answers are right or all wrong (nothing to separate)."""
    confidence, correct = np.asarray(confidence, np.float64), np.asarray(correct, bool)
    n_right, n_wrong = int(correct.sum()), int((~correct).sum())
    if n_right == 0 or n_wrong == 0:
        return float("nan")
    from scipy import stats  # Only the foreign-digit suite and the tests call this.

    ranks = stats.rankdata(confidence)  # Ties get their mean rank: the Mann–Whitney U with ties.
    u = ranks[correct].sum() - n_right * (n_right + 1) / 2
    return float(u / (n_right * n_wrong))


def fit_run(val: Mapping[str, tuple[np.ndarray, np.ndarray]], test: Mapping[str, tuple[np.ndarray, np.ndarray]]
            ) -> dict[str, Any]:
    """Temperatures fitted on validation and the test ECE before and after, per seed and task.

    Args:
      val, test: task -> (S×N×C logits, N labels) of each classification task.

    Returns:
      {"method", "bins", "seeds": [{task: {"temperature", "val_nll_before", "val_nll_after",
      "test_ece_before", "test_ece_after"}}], "mean": {task: the same keys averaged over seeds}}.
    """
    seeds = []
    for k in range(len(next(iter(val.values()))[0])):
        per_task = {}
        for t, (logits, labels) in val.items():
            temperature = fit_temperature(logits[k], labels)
            test_logits, test_labels = test[t][0][k], test[t][1]
            per_task[t] = {"temperature": temperature,
                           "val_nll_before": nll(logits[k], labels, 1.0),
                           "val_nll_after": nll(logits[k], labels, temperature),
                           "test_ece_before": ece(*top_label(test_logits, test_labels)),
                           "test_ece_after": ece(*top_label(test_logits, test_labels, temperature))}
        seeds.append(per_task)
    mean = {t: {key: float(np.mean([s[t][key] for s in seeds])) for key in seeds[0][t]} for t in seeds[0]}
    return {"method": "temperature scaling fitted on the validation split (NLL)", "bins": BINS,
            "seeds": seeds, "mean": mean}


def temperatures(run_dir: Path, seed: int) -> dict[str, float] | None:
    """Seed `seed`'s fitted temperature per task, or None for a run without `calibration.json`."""
    path = Path(run_dir) / CALIBRATION_FILE
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return {t: float(v["temperature"]) for t, v in record["seeds"][seed].items()}
