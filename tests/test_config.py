"""Config validation, overrides and immutability; bad input exits 2 and writes nothing."""

from __future__ import annotations

import pytest

from mtljax import config, run

# The malformed configs (exit 2, one line, nothing written) are in tests/test_robustness.py.


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


def test_configs_saved_before_components_owned_their_options_still_load():
    """Runs saved every option of every component in flat sections; `upgrade` moves a strategy's
    options under its name and drops what the selected components never read."""
    saved = config.thaw(config.resolve({"mtl": {"strategy": "cagrad"}}))
    saved["mtl"] = {"strategy": "cagrad", "dwa_temperature": 2.0, "gradnorm_alpha": 1.5, "gradnorm_lr": 0.025,
                    "cagrad_c": 0.7, "diagnose_every": 0, "diagnose_batch": 256}
    saved["model"].update(activation="relu")  # An mlp-only option, stored by every old run.
    saved["data"].update(train_pairs=40000, val_pairs=4000, test_pairs=4000, compose="host")
    saved["schedule"].update(step_epochs=5, gamma=0.1, factor=0.5, patience=3, cooldown=0, min_lr=1e-5)
    with pytest.raises(config.ConfigError):
        config.resolve(saved)
    cfg = config.resolve(config.upgrade(saved))
    assert cfg["mtl"]["cagrad"]["c"] == 0.7 and "cagrad_c" not in cfg["mtl"]
    assert "activation" not in cfg["model"] and "train_pairs" not in cfg["data"] and "gamma" not in cfg["schedule"]
