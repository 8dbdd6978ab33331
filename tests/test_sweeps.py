"""Hyper-parameter sweeps: values × seeds in one compiled program, each replica a run of its own."""

from __future__ import annotations

import json
import pprint

import pytest

from mtljax import config, evaluate, run
from mtljax.outputs import summary as summaries
from mtljax.train import sweeps
from conftest import tiny_config


def _run(tmp_path, root, cfg, *args):
    path = tmp_path / "tiny.py"
    path.write_text("CONFIG = " + pprint.pformat(cfg) + "\n")
    assert run.main([str(path), "--root", str(tmp_path / root), *args]) == 0
    run_dir = next((tmp_path / root / "tiny").iterdir())
    return run_dir, json.loads((run_dir / "summary.json").read_text())


def test_grid_and_replica_values():
    points = sweeps.grid({"a": [1, 2], "b": [3, 4, 5]})
    assert points[:2] == [{"a": 1, "b": 3}, {"a": 1, "b": 4}] and len(points) == 6
    assert sweeps.grid({}) == [{}]
    values = sweeps.replica_values([{"a": 1.0}, {"a": 2.0}], n_seeds=2)
    assert values["a"].tolist() == [1.0, 1.0, 2.0, 2.0]  # Seeds vary fastest.


def test_pareto_front():
    assert summaries.pareto_front([1, 2, 3, 1], [3, 2, 1, 1]) == [True, True, True, False]
    assert summaries.pareto_front([1, 1], [1, 1]) == [True, True]  # Ties dominate nothing.


@pytest.mark.parametrize("text", ["loss_weights.parity", "lr=", "=1,2", "optimizer.lr=a,b"])
def test_parse_sweep_rejects(text):
    with pytest.raises(ValueError, match="--sweep"):
        sweeps.parse_sweep(text)


@pytest.mark.parametrize("sweep, message", [
    ({"model.features": [[4], [8]]}, "sweep.model.features: cannot be swept"),
    ({"train.batch_size": [10, 20]}, "sweep.train.batch_size: cannot be swept"),
    ({"loss_weights.color": [1, 2]}, "sweep.loss_weights.color: cannot be swept"),
    ({"optimizer.lr": [1e-3, -1.0]}, "sweep.optimizer.lr: must be > 0"),
    ({"model.dropout": [0.1, 1.0]}, r"sweep.model.dropout: must be in \[0, 1\)"),
    ({"loss_weights.parity": [1, -2]}, "sweep.loss_weights.parity: expected numbers >= 0"),
    ({"optimizer.lr": []}, "sweep.optimizer.lr: expected a non-empty list"),
])
def test_unsweepable_or_bad_values_are_refused(tiny_data_dir, sweep, message):
    with pytest.raises(config.ConfigError, match=message):
        config.resolve(tiny_config(tiny_data_dir, sweep=sweep))


def test_bad_sweep_exits_2_and_writes_nothing(tmp_path, tiny_data_dir, capsys):
    path = tmp_path / "tiny.py"
    path.write_text("CONFIG = " + pprint.pformat(tiny_config(tiny_data_dir)) + "\n")
    for arg in ("model.dense=8,16", "optimizer.lr=x"):
        assert run.main([str(path), "--root", str(tmp_path / "out"), "--sweep", arg]) == 2
        assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.long(30)
@pytest.mark.parametrize("key, values", [
    pytest.param("loss_weights.parity", [0.5, 2.0], marks=pytest.mark.outputs),  # Its Pareto figure.
    ("optimizer.lr", [3e-3, 1e-2]),
    ("model.dropout", [0.1, 0.4]),  # (optimizer.weight_decay takes optimizer.lr's path: the optimizer rebuilt.)
])
def test_each_point_equals_its_own_run(tmp_path, tiny_data_dir, key, values, capsys):
    """Replica (value v, seed s) of a sweep trains as a plain run with --set key=v and seed s, to the
    float rounding of batching (vmap)."""
    cfg = tiny_config(tiny_data_dir, model={"dropout": 0.2}, optimizer={"lr": 1e-2})
    run_dir, summary = _run(tmp_path, "sweep", cfg, "--sweep", f"{key}={','.join(map(str, values))}",
                            "--seeds", "2")
    rows = summary["sweep"]["rows"]
    assert [r["values"] for r in rows] == [{key: v} for v in values] and len(summary["test_seeds"]) == 4
    assert "| " + key in capsys.readouterr().out  # The table is printed.
    for p, value in enumerate(values):
        _, plain = _run(tmp_path, f"plain{p}", cfg, "--set", f"{key}={value}", "seed=1")
        replica = summary["test_seeds"][2 * p + 1]
        for metric in ("digit/loss", "parity/loss", "loss"):
            assert replica[metric] == pytest.approx(plain["test"][metric], rel=2e-3), (value, metric)
    # The points really differ, and each replica restores alone.
    assert rows[0]["test"]["digit/loss"] != rows[1]["test"]["digit/loss"]
    assert evaluate.main([str(run_dir), "--seed", "3"]) == 0
    if key.startswith("loss_weights"):
        assert (run_dir / "pareto_digit_parity.png").stat().st_size > 0


def test_grid_of_two_keys_with_augmentation(tmp_path, tiny_data_dir):
    cfg = tiny_config(tiny_data_dir, tasks=["digit", "parity"], train={"epochs": 1})
    _, summary = _run(tmp_path, "grid", cfg, "--sweep", "loss_weights.parity=0,1", "--sweep", "augment.shift=0,2")
    values = [r["values"] for r in summary["sweep"]["rows"]]
    assert values == [{"loss_weights.parity": 0, "augment.shift": 0}, {"loss_weights.parity": 0, "augment.shift": 2},
                      {"loss_weights.parity": 1, "augment.shift": 0}, {"loss_weights.parity": 1, "augment.shift": 2}]
    losses = [r["test"]["digit/loss"] for r in summary["sweep"]["rows"]]
    assert len(set(losses)) == 4
    assert "| loss_weights.parity | augment.shift |" in summaries.markdown_table(summary)


def test_repeated_set_flags_all_apply(tmp_path, tiny_data_dir):
    """`--set a=1 --set b=2` applies both (argparse's default would keep only the last flag)."""
    cfg = tiny_config(tiny_data_dir, train={"epochs": 1})
    run_dir, summary = _run(tmp_path, "sets", cfg, "--set", "train.epochs=2", "--set", "optimizer.lr=0.02",
                            "data.val_size=50")
    saved = json.loads((run_dir / "config.json").read_text())
    assert (saved["train"]["epochs"], saved["optimizer"]["lr"], saved["data"]["val_size"]) == (2, 0.02, 50)
    assert summary["epochs_run"] == 2


@pytest.mark.outputs
def test_results_sweep_table(tmp_path, tiny_data_dir, capsys):
    from mtljax import results

    cfg = tiny_config(tiny_data_dir, tasks=["digit", "parity"], train={"epochs": 1})
    run_dir, _ = _run(tmp_path, "table", cfg, "--sweep", "loss_weights.parity=0.5,2")
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- sweep:start -->\nold\n<!-- sweep:end -->\nb\n")
    capsys.readouterr()
    assert results.main(["--sweep", str(run_dir), "--update", str(readme)]) == 0
    text = readme.read_text()
    assert "| loss_weights.parity | digit accuracy % | parity accuracy % |" in text and "| 0.5 |" in text
    assert "pareto_digit_parity.png" in text and "old" not in text
    assert results.main(["--sweep", str(tmp_path)]) == 2
