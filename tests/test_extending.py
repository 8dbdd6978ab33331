"""Adding a task, a backbone, an architecture and a strategy, each in one new file (examples/, docs/extending.md),
without editing the package: registered, configured by name, trained, evaluated and predicted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mtljax import config, predict, run
from mtljax.registry import Option, Registry

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "extended_experiment.py"


def test_the_example_components_train_evaluate_and_predict(tmp_path, tiny_data_dir, capsys):
    args = [str(EXAMPLE), "--root", str(tmp_path), "--set", f"data.dir={tiny_data_dir}", "data.val_size=100",
            "train.epochs=1", "train.batch_size=50"]
    assert run.main(args) == 0
    run_dir = next((tmp_path / "extended_experiment").iterdir())
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["model"] == {"name": "conv_gap", "head_hidden": 0, "head_dropout": 0.0, "width": 16, "dense": 32,
                              "architecture": "adapters", "adapters": {"hidden": 8}}
    assert saved["mtl"]["hardest_first"] == {"temperature": 2.0}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary["confusion"]) == {"mod3", "parity"} and len(summary["confusion"]["mod3"]) == 3
    assert 0 <= summary["test"]["mod3/accuracy"] <= 1
    # A fresh process reading the finished run imports the components again from its config.
    fresh = subprocess.run([sys.executable, "-m", "mtljax.evaluate", str(run_dir)], cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr
    assert "mod3" in fresh.stdout and f"equal to {run_dir / 'summary.json'}: yes" in fresh.stdout
    image = tmp_path / "seven.png"
    Image.fromarray(np.pad(np.full((12, 4), 255, np.uint8), 8)).save(image)
    capsys.readouterr()
    assert predict.main([str(run_dir), str(image), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["predictions"][0]
    assert result["mod3"]["label"] in ("0 mod 3", "1 mod 3", "2 mod 3") and "parity" in result


def test_the_example_strategy_weighs_the_hardest_task_most():
    import jax
    import jax.numpy as jnp

    from mtljax.mtl import strategies
    import examples.my_strategy  # noqa: F401

    losses = jnp.asarray([2.0, 1.0])
    ctx = strategies.context(jax.random.key(0), 0, 1, jnp.ones(2), strategies.default_config("hardest_first"))
    grads = jax.grad(lambda l: strategies.get("hardest_first").loss(l, {}, {}, ctx)[0])(losses)
    expected = 2 * np.exp([2.0, 1.0]) / np.exp([2.0, 1.0]).sum()  # T·softmax(L/τ), τ = 1.
    np.testing.assert_allclose(grads, expected, rtol=1e-6)


def test_a_broken_import_is_one_config_error(tiny_data_dir):
    with pytest.raises(config.ConfigError, match="imports: cannot import 'examples.nothing_here'"):
        config.resolve({"imports": ["examples.nothing_here"], "data": {"dir": str(tiny_data_dir)}})
    with pytest.raises(config.ConfigError, match="imports: expected a list of module names"):
        config.resolve({"imports": "examples.my_task"})


def test_registry_options_and_errors():
    registry = Registry("widget")
    registry.register("a", object(), {"size": Option(2, "a size", positive=True)})
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        registry.register("a", object())
    with pytest.raises(KeyError, match="unknown widget 'b'; registered: a"):
        registry["b"]
    option = registry.options("a")["size"]
    assert option.problem(3) is None and option.problem(0) == "must be > 0, got 0"
    assert option.problem(2.5) == "expected int, got float 2.5" and option.problem(None) == "must not be None"
    assert Option(0.5, minimum=0, below_one=True).problem(1.0) == "must be in [0, 1), got 1.0"
    assert Option(0.3, positive=True, below_one=True).problem(1.5) == "must be < 1, got 1.5"  # Without a minimum too.
    assert Option("a", choices=("a", "b")).problem("c") == "unknown value 'c'; choose one of a, b"
