"""Every MTL strategy runs from its config key with 2 seeds; one of each kind also on 8 fake CPU
devices (data parallel), with the same loss curves; conflict diagnostics land in the log and a plot."""

from __future__ import annotations

import json
import pprint
import subprocess
import sys

import numpy as np
import pytest

from mtljax import config, run
from mtljax.mtl import strategies
from conftest import SUMMARIES_ONLY, cpu_devices_env, tiny_config

# The preference-ray methods read a ray through the same paths as static weights and the other
# aggregators; tests/test_pareto*.py check them against their definitions and train them per ray
# and conditioned, so this (the suite's longest test) leaves out all but EPO.
PARETO_ONLY = ("tchebycheff", "pbi", "pmtl", "pmgda", "cosmos")
# The methods tests/test_new_method_runs.py trains (on three tasks: Krum needs three rows).
LATER = ("pcd", "cr_mogm", "krum", "trimmed_mean", "conicgrad", "auto_lambda", "moml", "forum")
NAMES = sorted(n for n in strategies.STRATEGIES if n not in PARETO_ONLY + LATER)
# On 8 devices, one method of most ways a method reaches the step: a plain loss weighting, its own
# parameters and epoch state, the losses after the update, the representation's Gramian, a Gramian
# solve with T×P state, independent samples, transformed losses, the preference ray. (Random draws
# and plain aggregators reach it as these do; tests/test_parallel.py runs hard sharing there too.)
EIGHT = ["equal", "uw", "famo", "mgda_ub", "moco", "modo", "imtl", "epo"]


def _cfg(data_dir, name):
    return tiny_config(data_dir, name=f"s_{name}", tasks=["digit", "parity"], mtl={"strategy": name},
                       train={"epochs": 1, "batch_size": 40})


def _history(root, name):
    run_dir = next((root / f"s_{name}").iterdir())
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()], run_dir


@pytest.mark.long(240)
def test_every_strategy_on_one_and_eight_devices(tmp_path, tiny_data_dir):
    paths = {}
    for name in NAMES:
        paths[name] = tmp_path / f"s_{name}.py"
        paths[name].write_text("CONFIG = " + pprint.pformat(_cfg(tiny_data_dir, name)) + "\n")
    code = SUMMARIES_ONLY + ("import sys, jax; from mtljax import run; assert len(jax.devices()) == 8\n"
            "for path in sys.argv[2:]:\n"
            "    assert run.main([path, '--root', sys.argv[1], '--seeds', '2']) == 0, path\n")
    env = cpu_devices_env(8)
    # The 8-device runs in a subprocess while this process runs the 1-device ones: most of the
    # time is compilation, which uses one core, so the two overlap on two cores.
    log = tmp_path / "eight.log"  # A file, not a pipe: the child must never wait for this process to read.
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "eight"), *[str(paths[n]) for n in EIGHT]],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            for name in NAMES:
                assert run.main([str(paths[name]), "--root", str(tmp_path / "one"), "--seeds", "2"]) == 0
            proc.wait(timeout=900)
        finally:
            proc.kill()
    assert proc.returncode == 0, log.read_text()[-3000:]
    losses = {}
    for name in NAMES:
        (one,), _ = _history(tmp_path / "one", name)
        if name in EIGHT:
            (eight,), _ = _history(tmp_path / "eight", name)
            for key in ("train/loss", "val/loss", "val/digit/loss"):
                np.testing.assert_allclose(eight["seeds"][key], one["seeds"][key], rtol=2e-3, err_msg=f"{name} {key}")
        assert len(set(one["seeds"]["val/loss"])) == 2  # The seeds differ.
        losses[name] = one["val/loss"]
    # The strategies really act differently, except where their definitions coincide: static at
    # weights 1, DWA in its first two epochs and STCH in its warm-up epoch are `equal`; with two
    # tasks UPGrad's projection onto the dual cone is PCGrad's projection (Quinton & Rey 2024 note
    # this); FairGrad with α = 1 solves Nash-MTL's equations (by another solver: rel 1e-4); DualProj
    # leaves the summed gradient as it is unless it conflicts with a task's, which here it does not.
    same = {"static": "equal", "dwa": "equal", "stch": "equal", "upgrad": "pcgrad", "fairgrad": "nash_mtl",
            "dualproj": "equal"}
    for name, twin in same.items():
        assert losses[name] == pytest.approx(losses[twin], rel=1e-6 if name != "fairgrad" else 1e-4), name
    assert len({round(v, 7) for k, v in losses.items() if k not in same}) == len(NAMES) - len(same)


def test_uncertainty_parameters_are_trained(tmp_path, tiny_data_dir):
    from mtljax.train import checkpoint

    path = tmp_path / "uw.py"
    path.write_text("CONFIG = " + pprint.pformat(_cfg(tiny_data_dir, "uw")) + "\n")
    assert run.main([str(path), "--root", str(tmp_path)]) == 0
    _, run_dir = _history(tmp_path, "uw")
    ckpt = checkpoint.RunCheckpoints(run_dir)
    params = ckpt.load_params("latest")
    ckpt.close()
    log_var = np.asarray(params["mtl"]["log_var"])
    assert log_var.shape == (1, 2) and np.all(log_var != 0)


@pytest.mark.outputs
def test_conflict_diagnostics(tmp_path, tiny_data_dir):
    cfg = tiny_config(tiny_data_dir, tasks=["digit", "parity", "threshold"], mtl={"diagnose_every": 1},
                      train={"epochs": 2})
    path = tmp_path / "diag.py"
    path.write_text("CONFIG = " + pprint.pformat(cfg) + "\n")
    assert run.main([str(path), "--root", str(tmp_path), "--seeds", "2"]) == 0
    run_dir = next((tmp_path / "tiny").iterdir())
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for record in history:
        cos = record["conflict/cos/digit|parity"]
        assert -1 <= cos <= 1 and len(record["seeds"]["conflict/cos/digit|parity"]) == 2
        ratios = [record[f"conflict/norm_ratio/{t}"] for t in ("digit", "parity", "threshold")]
        assert sum(ratios) == pytest.approx(3.0, rel=1e-4)
    assert (run_dir / "conflict.png").stat().st_size > 0


@pytest.mark.parametrize("key, value, message", [
    ("strategy", "pcgard", "mtl.strategy: unknown value 'pcgard'"),
    ("cagrad", {"c": -1}, "mtl.cagrad.c: must be >= 0"),
    ("dwa", {"temperature": 0}, "mtl.dwa.temperature: must be > 0"),
    ("diagnose_every", -2, "mtl.diagnose_every: must be >= 0"),
    ("cagrad_c", 0.5, "mtl.cagrad_c: unknown key"),
    ("modo", {"gamma": 0}, "mtl.modo.gamma: must be > 0"),
    ("sdmgrad", {"iters": 0}, "mtl.sdmgrad.iters: must be > 0"),
    ("famo", {"lr": "fast"}, "mtl.famo.lr: expected a number, got str"),
    ("stch", {"warmup_epochs": 1.5}, "mtl.stch.warmup_epochs: expected int, got float"),
])
def test_bad_mtl_options(tiny_data_dir, key, value, message):
    strategy = {"strategy": key} if isinstance(value, dict) else {}
    with pytest.raises(config.ConfigError, match=message):
        config.resolve(tiny_config(tiny_data_dir, mtl={**strategy, key: value}))


def test_a_strategys_options_need_that_strategy(tiny_data_dir):
    with pytest.raises(config.ConfigError, match="mtl.cagrad: options of strategy 'cagrad', but mtl.strategy"):
        config.resolve(tiny_config(tiny_data_dir, mtl={"strategy": "pcgrad", "cagrad": {"c": 0.5}}))
    cfg = config.resolve(tiny_config(tiny_data_dir, mtl={"strategy": "cagrad", "cagrad": {"c": 0.5}}))
    assert cfg["mtl"]["cagrad"]["c"] == 0.5 and "dwa" not in cfg["mtl"]


def test_bad_method_from_the_command_line_writes_nothing(tmp_path, tiny_data_dir, capsys):
    path = tmp_path / "bad.py"
    path.write_text("CONFIG = " + pprint.pformat(_cfg(tiny_data_dir, "equal")) + "\n")
    for override, message in (('mtl.strategy="famoo"', "error: mtl.strategy: unknown value 'famoo'"),
                              ('mtl.strategy="modo"', "error: mtl.rep_grad: 'modo' compares independent samples")):
        extra = ["mtl.rep_grad=True"] if "modo" in override else []
        assert run.main([str(path), "--root", str(tmp_path / "runs"), "--set", override, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(message)
    assert not (tmp_path / "runs").exists()


def test_stateful_aggregators_on_the_representation(tmp_path, tiny_data_dir):
    """With `mtl.rep_grad` a T×P state is sized for the representation's rows (B·D), not the parameters."""
    cfg = tiny_config(tiny_data_dir, name="s_moco", tasks=["digit", "parity"], train={"epochs": 1, "batch_size": 40},
                      mtl={"strategy": "moco", "rep_grad": True})
    path = tmp_path / "rep_moco.py"
    path.write_text("CONFIG = " + pprint.pformat(cfg) + "\n")
    assert run.main([str(path), "--root", str(tmp_path / "runs")]) == 0
    (record,), _ = _history(tmp_path / "runs", "moco")
    assert np.isfinite(record["val/loss"])
