"""Seed sweeps in one compiled program: statistics, equality with plain runs, per-seed evaluation."""

from __future__ import annotations

import json
import math
import pprint

import numpy as np
import pytest

from mtljax import evaluate, run
from mtljax.outputs import seedstats
from conftest import run_codegen, tiny_config


def _experiment(tmp_path, cfg) -> str:
    path = tmp_path / "tiny.py"
    path.write_text("CONFIG = " + pprint.pformat(cfg) + "\n")
    return str(path)


def _run(tmp_path, root, cfg, *args):
    assert run.main([_experiment(tmp_path, cfg), "--root", str(tmp_path / root), *args]) == 0
    run_dir = next((tmp_path / root / "tiny").iterdir())
    history = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return run_dir, history, json.loads((run_dir / "summary.json").read_text())


def _no_times(history):
    return [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in history]


def test_summarize_by_hand():
    stats = seedstats.summarize([1.0, 2.0, 3.0])
    assert stats["mean"] == 2.0 and stats["std"] == pytest.approx(1.0)
    assert stats["ci95"] == pytest.approx(4.302653 / math.sqrt(3))  # t(0.975, 2 dof), tables: 4.303.
    assert seedstats.summarize([0.5]) == {"mean": 0.5, "std": 0.0, "ci95": 0.0}


def test_majority_vote_by_hand():
    """The seeds' vote: the most frequent class; a tie goes to the lowest-numbered seed's class."""
    preds = np.array([[1, 2, 3, 0, 4],
                      [1, 5, 3, 1, 4],
                      [2, 5, 6, 2, 4]])
    np.testing.assert_array_equal(seedstats.majority_vote(preds), [1, 5, 3, 0, 4])
    np.testing.assert_array_equal(seedstats.majority_vote(preds[:2]), [1, 2, 3, 0, 4])  # 1-1 ties: seed 0.
    assert seedstats.vote_accuracy({"digit": preds}, {"digit": np.array([1, 5, 6, 2, 4])}) == {"digit/accuracy": 0.6}


def test_one_seed_equals_a_plain_run(tmp_path, tiny_data_dir):
    cfg = tiny_config(tiny_data_dir, model={"dropout": 0.2})
    _, plain, plain_summary = _run(tmp_path, "plain", cfg)
    _, one, one_summary = _run(tmp_path, "one", cfg, "--seeds", "1")
    assert _no_times(plain) == _no_times(one)
    assert plain_summary["test"] == one_summary["test"] and "test_stats" not in one_summary


def test_three_seeds_in_one_program(tmp_path, tiny_data_dir, capsys):
    # Looped replicas (the CPU's default) run each seed as a plain run's step: bit for bit as XLA
    # compiles a run's programs, not as the rest of the suite does (conftest).
    with run_codegen():
        _three_seeds_in_one_program(tmp_path, tiny_data_dir, capsys)


def _three_seeds_in_one_program(tmp_path, tiny_data_dir, capsys):
    cfg = tiny_config(tiny_data_dir, model={"dropout": 0.2}, train={"replicas": "loop"})
    run_dir, history, summary = _run(tmp_path, "three", cfg, "--seeds", "3")
    assert summary["seeds"] == [0, 1, 2] and len(summary["test_seeds"]) == 3
    losses = [s["digit/loss"] for s in summary["test_seeds"]]
    assert len(set(losses)) == 3  # The seeds really differ.
    stats = summary["test_stats"]["digit/loss"]
    assert stats["mean"] == pytest.approx(np.mean(losses)) and stats["std"] == pytest.approx(np.std(losses, ddof=1))
    assert set(summary["test_vote"]) == {"digit/accuracy", "parity/accuracy", "threshold/accuracy"}
    assert 0 < summary["test_vote"]["digit/accuracy"] <= 1
    assert stats["ci95"] > 0 and len(history[0]["seeds"]["val/digit/accuracy"]) == 3
    # Seed 0 trains exactly like a plain run with seed 0: the replicas run one after another inside
    # the program (train.replicas=loop), each as a plain run's step.
    _, _, plain = _run(tmp_path, "plain", cfg)
    assert summary["test_seeds"][0] == {k: plain["test"][k] for k in summary["test_seeds"][0]}
    for k in range(3):
        capsys.readouterr()
        assert evaluate.main([str(run_dir), "--seed", str(k)]) == 0
        assert "equal to" in capsys.readouterr().out
    assert evaluate.main([str(run_dir), "--seed", "3"]) == 2


def test_vmapped_seeds_match_a_plain_run(tmp_path, tiny_data_dir):
    """train.replicas=vmap (the accelerator default) batches the seeds: seed 0 then trains like a
    plain run to the float rounding of the batched ops, the other seeds differ."""
    cfg = tiny_config(tiny_data_dir, model={"dropout": 0.2})
    _, _, summary = _run(tmp_path, "vmap", cfg, "--seeds", "2", "--set", "train.replicas=vmap")
    _, _, plain = _run(tmp_path, "plain", cfg)
    assert summary["test_seeds"][0]["digit/loss"] == pytest.approx(plain["test"]["digit/loss"], rel=1e-3)
    assert summary["test_seeds"][0]["digit/loss"] != summary["test_seeds"][1]["digit/loss"]


def test_resume_with_seeds_is_exact(tmp_path, tiny_data_dir):
    cfg = tiny_config(tiny_data_dir, train={"epochs": 3}, model={"dropout": 0.2})
    _, straight, s1 = _run(tmp_path, "straight", cfg, "--seeds", "2")
    path = _experiment(tmp_path, cfg)
    assert run.main([path, "--root", str(tmp_path / "split"), "--seeds", "2", "--set", "train.epochs=1"]) == 0
    assert run.main([path, "--root", str(tmp_path / "split"), "--resume", "--set", "train.epochs=3"]) == 0
    run_dir = next((tmp_path / "split" / "tiny").iterdir())
    resumed = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert _no_times(straight) == _no_times(resumed)
    assert s1["test_seeds"] == json.loads((run_dir / "summary.json").read_text())["test_seeds"]
