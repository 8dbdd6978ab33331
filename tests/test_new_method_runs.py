"""The bilevel methods, PCD (a task named in its options) and CR-MOGM (state) train from their
config keys (2 seeds, one program); the Gramian engine trains as the Jacobian path does; bad
options end a run with one error line and exit code 2."""

from __future__ import annotations

import json
import pprint

import numpy as np
import pytest

from mtljax import run
from conftest import tiny_config

# Krum, TrimmedMean and ConicGrad are stateless aggregators on the path every aggregator takes
# (tests/test_robust_methods.py checks them; their runs on the real experiments: benchmarks/new_methods.py).
METHODS = {"pcd": {"primary": "digit"}, "cr_mogm": {}, "auto_lambda": {}, "moml": {"lookahead": "train"}, "forum": {}}


def _run(tmp_path, data_dir, name, seeds=2, **sections):
    sections["train"] = {"epochs": 1, "batch_size": 40, **sections.get("train", {})}
    cfg = tiny_config(data_dir, name=name, **sections)
    path = tmp_path / f"{name}.py"
    path.write_text("CONFIG = " + pprint.pformat(cfg) + "\n")
    code = run.main([str(path), "--root", str(tmp_path / "runs"), "--seeds", str(seeds)])
    run_dir = next((tmp_path / "runs" / name).iterdir()) if (tmp_path / "runs" / name).exists() else None
    return code, run_dir


@pytest.mark.long(60)
def test_every_new_method_trains_by_name(tmp_path, tiny_data_dir):
    for name, options in METHODS.items():
        code, run_dir = _run(tmp_path, tiny_data_dir, f"m_{name}", mtl={"strategy": name, name: options})
        assert code == 0, name
        (record,) = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert np.all(np.isfinite(record["train/loss"])) and np.all(np.isfinite(record["val/loss"])), name
        assert len(json.loads((run_dir / "summary.json").read_text())["test"]) > 0


def test_the_gramian_engine_trains_as_the_jacobian_path(tmp_path, tiny_data_dir):
    losses = {}
    for engine in ("jacobian", "gramian"):
        code, run_dir = _run(tmp_path, tiny_data_dir, f"e_{engine}", seeds=1,
                             mtl={"strategy": "upgrad", "engine": engine}, train={"microbatch": 0})
        assert code == 0
        losses[engine] = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])["val/loss"]
    np.testing.assert_allclose(losses["gramian"], losses["jacobian"], rtol=1e-3)


@pytest.mark.parametrize("sections, message", [
    ({"tasks": ["digit", "parity"], "mtl": {"strategy": "krum"}},
     "error: mtl.krum.n_byzantine: 0 needs at least 3 tasks (n_byzantine + 3); there are 2"),
    ({"mtl": {"strategy": "pcd"}}, "error: mtl.pcd.primary: PCD needs its primary task; name one of digit"),
    ({"mtl": {"strategy": "pcgrad", "engine": "gramian"}}, "error: mtl.engine: 'gramian' runs methods defined"),
    ({"mtl": {"strategy": "auto_lambda", "auto_lambda": {"lookahead": "test"}}},
     "error: mtl.auto_lambda.lookahead: unknown value 'test'; choose one of val, train"),
])
def test_bad_options_are_one_error_line_and_exit_2(tmp_path, tiny_data_dir, capsys, sections, message):
    code, run_dir = _run(tmp_path, tiny_data_dir, "bad", **sections)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and run_dir is None
    assert len(err) == 1 and err[0].startswith(message), err


@pytest.mark.outputs
def test_learning_to_branch_searches_then_trains_the_chosen_tree(tmp_path, tiny_data_dir):
    stages = [tiny_config(tiny_data_dir, name="ltb_search", model={"architecture": "branch", "branch": {"width": 2}},
                          train={"epochs": 1, "batch_size": 40}),
              tiny_config(tiny_data_dir, name="ltb_tree", model={"architecture": "branch",
                                                                   "branch": {"tree": "stage:ltb_search"}},
                          train={"epochs": 1, "batch_size": 40})]
    path = tmp_path / "ltb.py"
    path.write_text("STAGES = " + pprint.pformat(stages) + "\n")
    assert run.main([str(path), "--root", str(tmp_path / "runs")]) == 0
    search = next((tmp_path / "runs" / "ltb_search").iterdir())
    chosen = json.loads((search / "tree.json").read_text())["tree"]
    assert (search / "tree.png").stat().st_size > 0 and json.loads((search / "summary.json").read_text())["tree"] == chosen
    tree_run = next((tmp_path / "runs" / "ltb_tree").iterdir())
    assert json.loads((tree_run / "config.json").read_text())["model"]["branch"]["tree"] == chosen
