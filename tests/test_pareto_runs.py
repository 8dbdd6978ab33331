"""Pareto fronts as runs: every ray a replica of one program, one conditioned model for every ray,
its evaluation and prediction at a chosen ray, and the bad preferences that stop a command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mtljax import evaluate, predict, run
from mtljax.compare import cells as cellrun, pareto as pareto_suite
from mtljax.mtl import pareto
from mtljax.outputs import rundir
from conftest import synthetic_mnist, tiny_config


def _train(root, cfg):
    (root / "exp.py").write_text(f"CONFIG = {cfg!r}\n")
    assert run.main([str(root / "exp.py"), "--root", str(root / "runs")]) == 0
    run_dir = next((root / "runs" / "tiny").iterdir())
    return run_dir, json.loads((run_dir / rundir.SUMMARY_FILE).read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A per-ray run (3 rays × 2 seeds, EPO) and a conditioned one (COSMOS), each trained once."""
    from mtljax.data import mnist

    root = tmp_path_factory.mktemp("pareto")
    mnist.write_cache(root / "data", synthetic_mnist(), source="synthetic")
    common = {"tasks": ["digit", "parity"], "seeds": 2, "train": {"epochs": 1}}
    (root / "a").mkdir()
    (root / "b").mkdir()
    per_ray = _train(root / "a", tiny_config(root / "data", **common, pareto={"rays": 3}, mtl={"strategy": "epo"}))
    model = _train(root / "b", tiny_config(root / "data", **common, pareto={"condition": "input"},
                                            mtl={"strategy": "cosmos"}))
    return per_ray, model


def test_every_ray_is_a_replica_with_the_ray_as_its_loss_weights(runs):
    (run_dir, summary), _ = runs
    rows = summary["sweep"]["rows"]
    assert summary["sweep"]["keys"] == ["loss_weights.digit", "loss_weights.parity"]
    rays = pareto.uniform_rays(3, 2)
    np.testing.assert_allclose([[r["values"][f"loss_weights.{t}"] for t in ("digit", "parity")] for r in rows], rays,
                               rtol=1e-6)
    assert len(summary["test_seeds"]) == 6  # 3 rays × 2 seeds, one program.
    weighted = [s["loss"] for s in summary["test_seeds"]]
    by_hand = [rays[k // 2] @ [s["digit/loss"], s["parity/loss"]] for k, s in enumerate(summary["test_seeds"])]
    assert weighted == pytest.approx(by_hand, rel=1e-5)


def test_a_conditioned_model_answers_each_ray_differently(runs, capsys):
    _, (run_dir, summary) = runs
    centre = evaluate.evaluate_run(run_dir)
    assert centre[0]["digit/loss"] == pytest.approx(summary["test_seeds"][0]["digit/loss"], rel=1e-5)
    skewed = evaluate.evaluate_run(run_dir, preference=[0.9, 0.1])
    assert skewed[0]["digit/loss"] != centre[0]["digit/loss"]
    assert evaluate.main([str(run_dir), "--preference", "0.9,0.1"]) == 0
    assert "digit" in capsys.readouterr().out


@pytest.mark.parametrize("value, message", [
    ("0.5", "pareto.preference: expected 2 numbers"),
    ("-1,2", "pareto.preference: expected numbers >= 0"),
    ("0,0", "pareto.preference: a ray needs a number > 0"),
    ("x,1", "--preference 'x,1': expected numbers"),
])
def test_bad_preferences_are_one_error_line(runs, capsys, value, message):
    _, (run_dir, _) = runs
    for main, extra in ((evaluate.main, []), (predict.main, ["nothing.png"])):
        assert main([str(run_dir), *extra, "--preference", value]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_a_preference_for_a_run_of_one_model_per_ray_is_refused(runs, capsys):
    (run_dir, _), _ = runs
    assert evaluate.main([str(run_dir), "--preference", "0.5,0.5"]) == 2
    assert capsys.readouterr().err.strip() == ("error: pareto.preference: this run is not preference-conditioned "
                                              "(pareto.condition 'none')")


def test_the_suites_fronts_of_both_kinds(runs):
    (ray_dir, ray_summary), (model_dir, model_summary) = runs
    cell = lambda kind: pareto_suite.Cell("x", kind, kind, "", (), strategy="epo")  # noqa: E731
    front = pareto_suite.ray_front(cellrun.CellState(cell("ray"), "complete", ray_dir, ray_summary), ["digit", "parity"])
    assert front.losses.shape == (2, 3, 2)  # seeds × rays × tasks
    assert front.losses[1, 2, 0] == ray_summary["test_seeds"][5]["digit/loss"]
    model = pareto_suite.model_front(cellrun.CellState(cell("model"), "complete", model_dir, model_summary),
                                     ["digit", "parity"], 3)
    assert model.losses.shape == (2, 3, 2) and (model_dir / pareto_suite.FRONT_FILE).exists()
    assert np.all(np.asarray(pareto_suite.hypervolumes(model, (10.0, 10.0))) > 0)
    assert pareto_suite.stray(front, None) is None and 0 <= pareto_suite.stray(model, "direct") <= 90
    table = pareto_suite.table([front, model], (10.0, 10.0)).splitlines()
    assert len(table) == 4 and table[2].startswith("| ray | one per ray | 3 | ") and "°" in table[3]
    assert pareto_suite.paragraph([front, model], (10.0, 10.0)).startswith("Mean hypervolume of the test losses")
