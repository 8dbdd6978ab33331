"""A regression task wired through everything: the step, evaluation, the summary, figures, the
results table, the report, evaluate, predict, seeds and a loss-weight sweep (task `sum`: the sum of
a MultiMNIST image's two digits, beside the two classification tasks)."""

from __future__ import annotations

import json
import pprint

import numpy as np
import pytest
from PIL import Image

from mtljax import config, evaluate, predict, report, results, run
from conftest import tiny_config


def _config(data_dir, **sections):
    return tiny_config(data_dir, tasks=["left", "right", "sum"], data={"dataset": "multimnist"}, **sections)


def _run(tmp_path, cfg, *args):
    path = tmp_path / "mixed.py"
    path.write_text("CONFIG = " + pprint.pformat(cfg) + "\n")
    assert run.main([str(path), "--root", str(tmp_path / "runs"), *args]) == 0
    run_dir = next((tmp_path / "runs" / cfg.get("name", "tiny")).iterdir())
    return run_dir, json.loads((run_dir / "summary.json").read_text())


@pytest.mark.outputs
def test_a_regression_head_beside_classification_heads(tmp_path, tiny_data_dir, capsys):
    run_dir, summary = _run(tmp_path, _config(tiny_data_dir, train={"monitor": "val/sum/mae", "monitor_mode": "min"}),
                            "--seeds", "2")
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"train/sum/loss", "train/sum/mae", "val/sum/mae", "val/sum/rmse", "val/left/accuracy"} <= set(history[-1])
    assert "val/sum/accuracy" not in history[-1] and "train/sum/accuracy" not in history[-1]
    test = summary["test"]
    assert 0 <= test["sum/mae"] <= test["sum/rmse"] and "sum/accuracy" not in test
    assert set(summary["confusion"]) == {"left", "right"}  # Regression has no confusion matrix.
    assert summary["tasks"]["sum"] == {"kind": "regression", "headline": "mae", "higher_is_better": False}
    assert set(summary["test_vote"]) == {"left/accuracy", "right/accuracy"}  # Votes are for classes.
    assert "sum/mae" in summary["test_stats"] and len(summary["test_seeds"]) == 2
    for name in ("curves.png", "samples.png", "confusion_left.png"):
        assert (run_dir / name).stat().st_size > 0
    assert not (run_dir / "confusion_sum.png").exists()
    out = capsys.readouterr().out
    assert " mae" in out.splitlines()[-1] and "sum " in out.splitlines()[-1]  # The run's test line.
    # The results table and the report show the task's error.
    (tmp_path / "exps").mkdir()
    table = results.results_table(tmp_path / "runs", tmp_path / "exps")
    assert f"sum {test['sum/mae']:.3f} ± " in table and "sum rmse" in table
    html = report.build_report([run_dir])
    assert "<th>MAE</th>" in html and "sum mae" in html
    # evaluate reproduces it; predict gives a value.
    assert evaluate.main([str(run_dir)]) == 0
    assert "sum          loss=" in capsys.readouterr().out
    image = tmp_path / "digits.png"
    Image.fromarray(np.pad(np.full((16, 4), 255, np.uint8), 6)).save(image)
    assert predict.main([str(run_dir), str(image), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["predictions"][0]["sum"]
    assert set(result) == {"value", "label"} and isinstance(result["value"], float)


@pytest.mark.outputs
def test_a_loss_weight_sweep_over_the_regression_task(tmp_path, tiny_data_dir):
    run_dir, summary = _run(tmp_path, _config(tiny_data_dir, train={"epochs": 1}),
                            "--sweep", "loss_weights.sum=0.5,2")
    rows = summary["sweep"]["rows"]
    assert [r["values"] for r in rows] == [{"loss_weights.sum": 0.5}, {"loss_weights.sum": 2.0}]
    assert (run_dir / "pareto_left_sum.png").stat().st_size > 0


def test_the_regression_task_needs_a_dataset_with_two_digits(tiny_data_dir):
    with pytest.raises(config.ConfigError, match="task 'sum' needs 'sum' labels"):
        config.resolve(tiny_config(tiny_data_dir, tasks=["digit", "sum"]))
