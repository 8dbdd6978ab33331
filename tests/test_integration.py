"""End to end through the command line: run, outputs, evaluate, resume; and one real-data run."""

from __future__ import annotations

import json
import os
import pprint
import re

import pytest

from mtljax import evaluate, run
from mtljax.train import parallel
from conftest import run_codegen, tiny_config


def _experiment(tmp_path, cfg) -> str:
    path = tmp_path / "tiny.py"
    path.write_text("CONFIG = " + pprint.pformat(cfg) + "\n")
    return str(path)


def _history(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _only_run(root):
    runs = sorted((root / "tiny").iterdir())
    assert len(runs) == 1
    return runs[0]


@pytest.mark.outputs
def test_run_writes_everything_and_evaluate_reproduces(tmp_path, tiny_data_dir, capsys):
    root = tmp_path / "runs"
    assert run.main([_experiment(tmp_path, tiny_config(tiny_data_dir)), "--root", str(root)]) == 0
    run_dir = _only_run(root)
    for name in ("config.json", "metrics.jsonl", "summary.json", "curves.png", "samples.png",
                 "confusion_digit.png", "confusion_parity.png", "confusion_threshold.png"):
        assert (run_dir / name).stat().st_size > 0, name
    history = _history(run_dir)
    assert [r["epoch"] for r in history] == [1, 2]
    for key in ("train/loss", "val/loss", "lr", "epoch_time_s", "train/parity/accuracy", "val/digit/f1"):
        assert key in history[0]
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("test/digit/accuracy", "digit/precision", "threshold/f1"):
        assert key.removeprefix("test/") in summary["test"]
    assert {"wall_time_s", "mean_epoch_time_s", "compile_time_s"} <= set(summary)
    # Where the time went: every phase of the run, those off the critical path apart.
    timing, background = summary["timing"], "figures (background)"
    assert {"data", "init", "training", "validation", "test", "calibration", "summary", background,
            "tensorboard (background)", "checkpoints (background)"} <= set(timing["phases"])
    assert any(k.startswith("compile (") for k in timing["phases"]) and timing["phases"]["training"] > 0
    critical = sum(v for k, v in timing["phases"].items() if not k.endswith("(background)"))
    assert abs(timing["wall_s"] - critical - timing["other_s"]) < 1e-6 and timing["other_s"] > -1e-6
    # The commit that made the numbers (this test runs inside the mtljax git checkout).
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", summary["code_version"]), summary["code_version"]
    assert 100 < summary["peak_rss_mib"] < 20_000
    assert sum(map(sum, summary["confusion"]["digit"])) == 200
    assert (run_dir / "ckpt" / "best").is_dir() and (run_dir / "ckpt" / "latest" / "20").is_dir()  # Train steps.
    capsys.readouterr()
    assert evaluate.main([str(run_dir)]) == 0
    assert "equal to" in capsys.readouterr().out


def test_resume_finishes_the_remaining_epochs_exactly(tmp_path, tiny_data_dir):
    cfg = tiny_config(tiny_data_dir, train={"epochs": 3}, model={"dropout": 0.2})
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run.main([_experiment(tmp_path, cfg), "--root", str(straight)]) == 0
    # Interrupted after one epoch: run 1 epoch, then resume the same run up to 3.
    assert run.main([_experiment(tmp_path, cfg), "--root", str(split), "--set", "train.epochs=1"]) == 0
    assert run.main([_experiment(tmp_path, cfg), "--root", str(split), "--resume",
                     "--set", "train.epochs=3"]) == 0
    a, b = _history(_only_run(straight)), _history(_only_run(split))
    assert [r["epoch"] for r in b] == [1, 2, 3]
    drop_times = lambda rows: [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in rows]
    assert drop_times(a) == drop_times(b)
    sa = json.loads((_only_run(straight) / "summary.json").read_text())["test"]
    sb = json.loads((_only_run(split) / "summary.json").read_text())["test"]
    assert sa == sb


def test_evaluate_rejects_a_non_run(tmp_path, capsys):
    assert evaluate.main([str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err


@pytest.mark.real_data
def test_real_data_short_run(tmp_path, real_mnist):
    root = tmp_path / "runs"
    args = ["experiments/threshold.py", "--root", str(root), "--set", "train.epochs=1", "data.limit=3000"]
    with run_codegen():  # A real model: running it takes longer than compiling it.
        assert run.main(args) == 0
    summary = json.loads(next((root / "threshold").glob("*/summary.json")).read_text())
    # One epoch on 3,000 real images: far above chance (10 % / 50 %), far below the full run.
    assert summary["test"]["digit/accuracy"] > 0.6
    assert summary["test"]["parity/accuracy"] > 0.75 and summary["test"]["threshold/accuracy"] > 0.75
    assert sum(map(sum, summary["confusion"]["digit"])) == 3000


@pytest.mark.long(35)
def test_compile_cache_fills_and_a_cached_rerun_is_identical(tmp_path, tiny_data_dir):
    """Three processes with one persistent compilation cache: the first writes it, the second loads
    from it and trains to the very same numbers, and so does a third after every entry was cut in
    half."""
    import os
    import subprocess
    import sys

    cache, exp = tmp_path / "xla", _experiment(tmp_path, tiny_config(tiny_data_dir))
    # Every compiled program is cached: the tiny train call compiles in under mtljax's 0.5 s
    # threshold on a fast machine, which left the cache empty.
    env = {**os.environ, "MTLJAX_COMPILE_CACHE": str(cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    summaries = []
    for k in range(3):
        root = tmp_path / f"runs{k}"
        out = subprocess.run([sys.executable, "-m", "mtljax.run", exp, "--root", str(root)], env=env, check=True,
                             capture_output=True, text=True)
        if k == 2:
            assert "Error reading persistent compilation cache entry" in out.stderr  # Read, refused, recompiled.
        if k == 0:
            assert any(cache.iterdir())
        if k == 1:  # As a process killed mid-write would leave them (JAX writes entries in place).
            for entry in cache.iterdir():
                entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
        summaries.append((json.loads((_only_run(root) / "summary.json").read_text())["test"],
                          _history(_only_run(root))[-1]["train/loss"]))
    # Cached, and with every entry truncated (JAX warns and compiles again): the very same numbers.
    assert summaries[0] == summaries[1] == summaries[2]


@pytest.mark.parametrize("before, after", [
    ("", "--xla_gpu_deterministic_ops=true"),
    ("--xla_cpu_enable_fast_math=false", "--xla_cpu_enable_fast_math=false --xla_gpu_deterministic_ops=true"),
    ("--xla_gpu_deterministic_ops=false", "--xla_gpu_deterministic_ops=false"),  # The user's choice stays.
])
def test_runs_ask_for_deterministic_gpu_kernels(monkeypatch, before, after):
    monkeypatch.setenv("XLA_FLAGS", before)
    parallel.deterministic_gpu_kernels()
    assert os.environ["XLA_FLAGS"] == after
