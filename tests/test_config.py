"""Config validation, overrides and immutability; bad input exits 2 and writes nothing."""

from __future__ import annotations

import pytest

from mtljax import config, run

BAD_CONFIGS = [
    ({"optimiser": {}}, "optimiser: unknown key"),
    ({"optimizer": {"lr": "fast"}}, "optimizer.lr: expected a number"),
    ({"optimizer": {"lr": -1e-3}}, "optimizer.lr: must be > 0"),
    ({"optimizer": {"name": "adagrad"}}, "optimizer.name: unknown value 'adagrad'"),
    ({"train": {"batch_size": 0}}, "train.batch_size: must be > 0"),
    ({"train": {"epochs": 2.5}}, "train.epochs: expected int"),
    ({"train": {"epochs": True}}, "train.epochs: expected int"),
    ({"train": {"restore_best": 1}}, "train.restore_best: expected bool"),
    ({"tasks": ["digit", "colour"]}, "tasks: unknown task 'colour'"),
    ({"tasks": []}, "tasks: expected a non-empty list"),
    ({"model": {"name": "resnet152"}}, "model.name: unknown value 'resnet152'"),
    ({"model": {"features": [32, "64"]}}, "model.features: expected a list of int"),
    ({"model": {"dropout": 1.5}}, "model.dropout: must be in [0, 1)"),
    ({"schedule": {"name": "warmup"}}, "schedule.name: unknown value 'warmup'"),
    ({"loss_weights": {"parity": 2.0}}, "loss_weights.parity: no such task configured"),
    ({"tasks": ["digit", "parity"], "loss_weights": {"parity": -1}}, "loss_weights.parity: expected a number >= 0"),
    ({"train": {"monitor": "val/parity/accuracy"}}, "train.monitor: unknown metric"),
    ({"data": {"limit": 0}}, "data.limit: must be > 0"),
    ({"data": None}, "data: expected a dict"),
    ({"seed": None}, "seed: must not be None"),
]


@pytest.mark.parametrize("overrides,message", BAD_CONFIGS)
def test_bad_config_is_rejected(overrides, message):
    with pytest.raises(config.ConfigError) as info:
        config.resolve(overrides)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_config_is_frozen_and_defaults_fill_in():
    cfg = config.resolve({"tasks": ["digit", "parity"], "optimizer": {"lr": 3e-4}})
    assert cfg["optimizer"]["lr"] == 3e-4 and cfg["optimizer"]["name"] == "adam"
    assert cfg["train"]["epochs"] == config.DEFAULTS["train"]["epochs"]
    with pytest.raises(TypeError):
        cfg["optimizer"]["lr"] = 1.0  # type: ignore[index]
    assert isinstance(cfg["tasks"], tuple)
    assert config.DEFAULTS["optimizer"]["lr"] == 1e-3  # Defaults untouched.


def test_dotted_overrides():
    out = config.apply_overrides({"optimizer": {"lr": 1e-3}}, ["optimizer.lr=3e-4", "train.epochs=2",
                                                               "schedule.name=cosine", "tasks=['digit']"])
    assert out == {"optimizer": {"lr": 3e-4}, "train": {"epochs": 2}, "schedule": {"name": "cosine"},
                   "tasks": ["digit"]}
    with pytest.raises(config.ConfigError, match="expected key=value"):
        config.apply_overrides({}, ["optimizer.lr"])


def _write(tmp_path, body):
    path = tmp_path / "exp.py"
    path.write_text(body)
    return str(path)


@pytest.mark.parametrize("body,args,message", [
    ("CONFIG = {'tasks': ['digit', 'nope']}", [], "tasks: unknown task 'nope'"),
    ("CONFIG = {}", ["--set", "optimizer.lr=-1"], "optimizer.lr: must be > 0"),
    ("CONFIG = {}", ["--set", "model.widht=3"], "model.widht: unknown key"),
    ("raise RuntimeError('boom')", [], "raised RuntimeError: boom"),
    ("X = 1", [], "must define CONFIG"),
])
def test_cli_rejects_bad_input_before_any_work(tmp_path, capsys, body, args, message):
    root = tmp_path / "runs"
    code = run.main([_write(tmp_path, body), "--root", str(root), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not root.exists()


def test_cli_missing_file_and_resume_without_run(tmp_path, capsys):
    root = tmp_path / "runs"
    assert run.main([str(tmp_path / "missing.py"), "--root", str(root)]) == 2
    assert "experiment file not found" in capsys.readouterr().err
    assert run.main([_write(tmp_path, "CONFIG = {}"), "--root", str(root), "--resume"]) == 2
    assert "--resume: no run of 'exp'" in capsys.readouterr().err
    assert not root.exists()
