"""Soft-sharing architectures through the whole tool: seeds, resume, evaluate, predict, transfer
of the shared parameters, sweeps with diagnostics, and one-line errors for bad combinations."""

from __future__ import annotations

import json
import pprint

import jax
import numpy as np
import pytest
from PIL import Image

from mtljax import evaluate, predict, run
from mtljax.train import checkpoint
from conftest import tiny_config


def _write(tmp_path, cfg, name="exp.py", stages=None):
    path = tmp_path / name
    path.write_text(f"STAGES = {pprint.pformat(stages)}\n" if stages else f"CONFIG = {pprint.pformat(cfg)}\n")
    return str(path)


def _runs(root, name):
    return sorted((root / name).iterdir())


def _history(run_dir):
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in rows]


def _params(run_dir, which):
    ckpts = checkpoint.RunCheckpoints(run_dir)
    try:
        return ckpts.load_params(which)
    finally:
        ckpts.close()


def test_soft_sharing_resumes_exactly_evaluates_and_predicts(tmp_path, tiny_data_dir, capsys):
    cfg = tiny_config(tiny_data_dir, model={"architecture": "cgc", "dropout": 0.2}, seeds=2, train={"epochs": 2})
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run.main([_write(tmp_path, cfg), "--root", str(straight)]) == 0
    assert run.main([_write(tmp_path, cfg), "--root", str(split), "--set", "train.epochs=1"]) == 0
    assert run.main([_write(tmp_path, cfg), "--root", str(split), "--resume", "--set", "train.epochs=2"]) == 0
    a, b = _runs(straight, "tiny")[0], _runs(split, "tiny")[0]
    assert _history(a) == _history(b)
    assert json.loads((a / "summary.json").read_text())["test"] == json.loads((b / "summary.json").read_text())["test"]
    capsys.readouterr()
    assert evaluate.main([str(a)]) == 0 and "equal to" in capsys.readouterr().out
    image = tmp_path / "digit.png"
    Image.fromarray(np.pad(np.full((16, 4), 255, np.uint8), 6)).save(image)
    assert predict.main([str(a), str(image), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["predictions"][0]) >= {"digit", "parity", "threshold"}


def test_transfer_takes_and_freezes_the_shared_experts(tmp_path, tiny_data_dir):
    model = {"architecture": "mmoe", "mmoe": {"experts": 2}}
    first = tiny_config(tiny_data_dir, name="first", tasks=["digit", "parity"], model=model, train={"epochs": 1})
    second = tiny_config(tiny_data_dir, name="second", tasks=["threshold"], model=model, optimizer={"lr": 1e-2},
                         init={"run": "stage:first", "params": ["shared"]}, train={"freeze": ["shared"], "epochs": 2})
    root = tmp_path / "runs"
    assert run.main([_write(tmp_path, None, stages=[first, second]), "--root", str(root)]) == 0
    before, after = _params(_runs(root, "first")[0], "best"), _params(_runs(root, "second")[0], "latest")
    for name in ("expert_0", "expert_1"):
        for x, y in zip(jax.tree.leaves(before[name]), jax.tree.leaves(after[name])):
            np.testing.assert_array_equal(x, y)
    history = _history(_runs(root, "second")[0])
    assert history[-1]["train/threshold/loss"] < history[0]["train/threshold/loss"]  # Its gate and head learn.


def test_a_sweep_with_diagnostics_on_cross_stitch(tmp_path, tiny_data_dir):
    cfg = tiny_config(tiny_data_dir, model={"architecture": "cross_stitch"}, mtl={"strategy": "pcgrad",
                                                                                  "diagnose_every": 1},
                      train={"epochs": 1})
    root = tmp_path / "runs"
    assert run.main([_write(tmp_path, cfg), "--root", str(root), "--sweep", "loss_weights.parity=0.5,2"]) == 0
    run_dir = _runs(root, "tiny")[0]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(summary["test_seeds"]) == 2
    row = _history(run_dir)[-1]
    assert np.isfinite(row["conflict/cos/digit|parity"]) and -1 <= row["conflict/cos/digit|parity"] <= 1


@pytest.mark.parametrize("sections,message", [
    ({"model": {"architecture": "mtan", "name": "mlp_scratch", "features": [8]}},
     "model.architecture: 'mtan' runs the backbone block by block, which backbone 'mlp_scratch' cannot"),
    ({"model": {"architecture": "ple", "name": "mlp", "features": [8]}}, "model.ple.levels: at most the backbone's 1"),
    ({"model": {"architecture": "dselect_k", "dselect_k": {"experts": 2, "k": 3}}}, "model.dselect_k.k: at most"),
    ({"model": {"architecture": "dselect_k", "dselect_k": {"experts": 3}}}, "model.dselect_k.experts: "),
    ({"model": {"architecture": "moe"}}, "model.architecture: unknown value 'moe'"),
    ({"model": {"experts": 3}}, "model.experts: an option of architecture mmoe, dselect_k"),
    ({"model": {"mmoe": {"experts": 3}}}, "model.mmoe: options of architecture 'mmoe', but model.architecture"),
    ({"mtl": {"strategy": "pcgrad", "rep_grad": True}, "model": {"architecture": "mmoe"}},
     "mtl.rep_grad needs one representation shared by every task, which architecture 'mmoe'"),
    ({"mtl": {"rep_grad": True}}, "mtl.rep_grad: only for gradient aggregators; 'static' is a loss strategy"),
    ({"mtl": {"strategy": "mgda_ub"}, "model": {"architecture": "cross_stitch"}}, "mtl.strategy: 'mgda_ub' needs one"),
    ({"model": {"architecture": "cgc"}, "train": {"freeze": ["backbone"]}},
     "train.freeze: unknown parameter subtree 'backbone'"),
])
def test_bad_architectures_exit_2_with_one_line_and_write_nothing(tmp_path, tiny_data_dir, capsys, sections, message):
    root = tmp_path / "runs"
    assert run.main([_write(tmp_path, tiny_config(tiny_data_dir, **sections)), "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert not root.exists() or not any(root.rglob("*"))
