"""Never lose a run: SIGKILL and resume, SIGTERM, NaN, failing disks, damaged checkpoints, bad
configs; and property tests of the task labels and data constructions."""

from __future__ import annotations

import json
import pprint
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mtljax import run, tasks
from mtljax.data import constructions
from mtljax.train import checkpoint
from conftest import tiny_config

from benchmarks import kill_resume


def _experiment(tmp_path, cfg, name="tiny"):
    path = tmp_path / f"{name}.py"
    path.write_text("CONFIG = " + pprint.pformat(cfg) + "\n")
    return path


def _history(run_dir):
    return [{k: v for k, v in json.loads(line).items() if k != "epoch_time_s"}
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# --- Kills and signals ------------------------------------------------------------------------------

def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path):
    path = kill_resume.write_setup(tmp_path)
    reference = kill_resume.run_to_end(path, tmp_path / "straight")
    run_dir, landed = kill_resume.killed_run(path, tmp_path / "killed", kills=2, rng=random.Random(1), window=6.0)
    assert landed >= 1
    assert kill_resume.same_run(reference, run_dir) == []
    epochs = [r["epoch"] for r in _history(run_dir)]
    assert epochs == [1, 2, 3]  # None missing, none repeated.


# Run in a subprocess: the writer thread's Orbax save of epoch `EPOCH`'s checkpoint stops half way (its
# arrays written to Orbax's temporary directory, its meta not), leaves a marker file and waits there.
STALLED_SAVE = """
import json, pathlib, sys, time
from orbax.checkpoint._src.handlers import json_checkpoint_handler as handler
from mtljax import run
real = handler.JsonCheckpointHandler._save_fn
async def stalled(self, x, directory):
    if isinstance(x, dict) and x.get("epoch") == EPOCH:
        pathlib.Path(MARKER).write_text(str(directory))
        time.sleep(600)
    return await real(self, x, directory)
handler.JsonCheckpointHandler._save_fn = stalled
sys.exit(run.main(sys.argv[1:]))
"""


def test_sigkill_during_a_background_save_keeps_the_last_checkpoint_and_resumes_bit_identical(tmp_path):
    """The checkpoints are written on a thread while the run goes on: a kill in the middle of one
    (here epoch 2's, its arrays on disk, its meta not) leaves epoch 1's checkpoint as the newest,
    which restores, and the resumed run equals an uninterrupted one bit for bit."""
    path = kill_resume.write_setup(tmp_path)
    reference = kill_resume.run_to_end(path, tmp_path / "straight")
    root, marker = tmp_path / "killed", tmp_path / "saving"
    code = STALLED_SAVE.replace("EPOCH", "2").replace("MARKER", repr(str(marker)))
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), "--root", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), proc.stderr.read()[-2000:] if proc.poll() is not None else "no save of epoch 2"
    proc.kill()
    proc.wait()
    run_dir = next((root / "killme").iterdir())
    assert not (run_dir / "summary.json").exists()
    assert list((run_dir / "ckpt" / "latest").glob("*tmp*")), "the kill did not land inside a save"
    import orbax.checkpoint as ocp

    ckpts = checkpoint.RunCheckpoints(run_dir)
    (step,) = ckpts.latest.all_steps()  # Epoch 1's; the unfinished one is not listed.
    meta = ckpts.latest.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    assert meta["epoch"] == 1
    ckpts.close()
    subprocess.run([sys.executable, "-m", "mtljax.run", str(path), "--root", str(root), "--resume", "--run-dir",
                    str(run_dir)], check=True, capture_output=True)
    assert kill_resume.same_run(reference, run_dir) == []
    assert [r["epoch"] for r in _history(run_dir)] == [1, 2, 3]


def test_sigterm_checkpoints_and_resumes_exactly(tmp_path):
    path = kill_resume.write_setup(tmp_path)
    # Long enough that the signal lands inside the training loop (after it, the default handler acts).
    cfg_text = path.read_text().replace("'epochs': 3", "'epochs': 12")
    path.write_text(cfg_text)
    reference = kill_resume.run_to_end(path, tmp_path / "straight")
    root = tmp_path / "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "mtljax.run", str(path), "--root", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # Until epoch 1 is logged: the loop is running.
        logs = list(root.glob("killme/*/metrics.jsonl"))
        if logs and logs[0].read_text().strip():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before SIGTERM arrived")
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "stopped by SIGTERM" in err and "--resume --run-dir" in err
    run_dir = next((root / "killme").iterdir())
    # In a subprocess like the reference: this test process compiles with other XLA options.
    subprocess.run([sys.executable, "-m", "mtljax.run", str(path), "--root", str(root), "--resume", "--run-dir",
                    str(run_dir)], check=True, capture_output=True)
    assert kill_resume.same_run(reference, run_dir) == []


def test_a_resumed_run_counts_the_wall_time_of_every_process():
    """The checkpoint carries the wall time spent so far; a resumed run adds its own to it."""
    from mtljax.train.loop import LoopState
    from mtljax.train.monitor import EarlyStopping

    first = LoopState("x", [], [EarlyStopping("max", 0)], clock=time.perf_counter() - 5.0)  # 5 s in.
    meta = first.meta(1)
    assert 5.0 <= meta["wall_s"] < 6.0
    stopper = lambda **kw: EarlyStopping("max", 0, **kw)
    resumed = LoopState.from_meta(meta, stopper)
    resumed.clock -= 2.0  # The second process has run for 2 s.
    assert 7.0 <= resumed.elapsed() < 8.5
    # A checkpoint written before wall times were recorded counts from zero.
    assert LoopState.from_meta({k: v for k, v in meta.items() if k != "wall_s"}, stopper).wall_s == 0.0


def test_orbax_never_lists_an_unfinished_checkpoint(tmp_path, tiny_data_dir):
    path = _experiment(tmp_path, tiny_config(tiny_data_dir))
    assert run.main([str(path), "--root", str(tmp_path / "runs")]) == 0
    run_dir = next((tmp_path / "runs" / "tiny").iterdir())
    latest = run_dir / "ckpt" / "latest"
    steps_before = checkpoint.RunCheckpoints(run_dir).latest.all_steps()
    partial = latest / "999.orbax-checkpoint-tmp-1234567"  # What a write killed midway leaves.
    (partial / "state").mkdir(parents=True)
    (partial / "state" / "junk").write_bytes(b"\0" * 10)
    ckpts = checkpoint.RunCheckpoints(run_dir)
    assert ckpts.latest.all_steps() == steps_before
    ckpts.close()
    assert run.main([str(path), "--root", str(tmp_path / "runs"), "--resume", "--run-dir", str(run_dir),
                     "--set", "train.epochs=3"]) == 0


# --- Non-finite numbers -----------------------------------------------------------------------------

def _exploding(data_dir, **train):
    return tiny_config(data_dir, optimizer={"name": "sgd", "lr": 1e30, "momentum": 0.0}, train=train)


def test_nan_stops_loudly_naming_step_epoch_and_task(tmp_path, tiny_data_dir, capsys):
    path = _experiment(tmp_path, _exploding(tiny_data_dir))
    assert run.main([str(path), "--root", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: non-finite" in err
    assert "at step " in err and "(epoch 1" in err and "task digit" in err
    run_dir = next((tmp_path / "runs" / "tiny").iterdir())
    assert checkpoint.RunCheckpoints(run_dir).latest.all_steps() == []  # Nothing bad was saved.


def test_nan_steps_can_be_skipped_and_are_counted(tmp_path, tiny_data_dir):
    path = _experiment(tmp_path, _exploding(tiny_data_dir, nonfinite="skip"))
    assert run.main([str(path), "--root", str(tmp_path / "runs")]) == 0
    run_dir = next((tmp_path / "runs" / "tiny").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    history = _history(run_dir)
    assert summary["nonfinite_steps_skipped"] == sum(r["train/nonfinite_steps"] for r in history) > 0


# --- Failing disks ------------------------------------------------------------------------------------

def test_a_failing_checkpoint_write_stops_clearly_and_keeps_the_last_one(tmp_path, tiny_data_dir, monkeypatch,
                                                                         capsys):
    cfg = tiny_config(tiny_data_dir, train={"epochs": 3})
    path = _experiment(tmp_path, cfg)
    assert run.main([str(path), "--root", str(tmp_path / "straight")]) == 0
    reference = next((tmp_path / "straight" / "tiny").iterdir())
    real_write = checkpoint.RunCheckpoints._write
    calls = []

    def failing(manager, step, tree, meta):
        calls.append(step)
        if len(calls) == 3:  # Epoch 1 wrote latest and best; epoch 2's first write fails.
            raise OSError(28, "No space left on device")
        return real_write(manager, step, tree, meta)

    monkeypatch.setattr(checkpoint.RunCheckpoints, "_write", staticmethod(failing))
    root = tmp_path / "full"
    assert run.main([str(path), "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "intact" in err and err.count("\n") == 1
    run_dir = next((root / "tiny").iterdir())
    monkeypatch.setattr(checkpoint.RunCheckpoints, "_write", staticmethod(real_write))
    ckpts = checkpoint.RunCheckpoints(run_dir)
    assert ckpts.latest.all_steps() == [10] and ckpts.best.all_steps() == [1]  # Epoch 1 (10 steps) only.
    ckpts.close()
    assert run.main([str(path), "--root", str(root), "--resume", "--run-dir", str(run_dir)]) == 0
    assert _history(run_dir) == _history(reference)


def test_an_unwritable_log_stops_clearly(tmp_path, tiny_data_dir, monkeypatch, capsys):
    from mtljax.outputs import history

    def failing(path, history):
        if history:
            raise PermissionError(13, "Read-only file system", str(path))

    monkeypatch.setattr(history, "write_history", failing)
    path = _experiment(tmp_path, tiny_config(tiny_data_dir))
    assert run.main([str(path), "--root", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert "Read-only file system" in err and err.count("\n") == 1


# --- Damaged or foreign checkpoints ----------------------------------------------------------------------

def _finished_run(tmp_path, data_dir, name="tiny", **sections):
    path = _experiment(tmp_path, tiny_config(data_dir, name=name, **sections), name)
    assert run.main([str(path), "--root", str(tmp_path / "runs")]) == 0
    return path, next((tmp_path / "runs" / name).iterdir())


def test_truncated_checkpoint_file_is_a_clear_error(tmp_path, tiny_data_dir, capsys):
    path, run_dir = _finished_run(tmp_path, tiny_data_dir)
    latest = run_dir / "ckpt" / "latest"
    newest = max(latest.iterdir(), key=lambda p: int(p.name))
    files = [f for f in (newest / "state").rglob("*") if f.is_file() and f.stat().st_size > 100]
    for f in files:
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
    capsys.readouterr()
    assert run.main([str(path), "--root", str(tmp_path / "runs"), "--resume", "--run-dir", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot restore") and err.count("\n") == 1


def test_checkpoint_of_another_shape_or_experiment_is_refused(tmp_path, tiny_data_dir, capsys):
    path, run_dir = _finished_run(tmp_path, tiny_data_dir)
    capsys.readouterr()
    assert run.main([str(path), "--root", str(tmp_path / "runs"), "--resume", "--run-dir", str(run_dir),
                     "--set", "model.dense=32"]) == 2
    assert capsys.readouterr().err.startswith("error: cannot restore")
    other = _experiment(tmp_path, tiny_config(tiny_data_dir, name="other"), "other")
    assert run.main([str(other), "--root", str(tmp_path / "runs"), "--resume", "--run-dir", str(run_dir)]) == 2
    assert "is a run of 'tiny', not 'other'" in capsys.readouterr().err


# --- Malformed configs: exit 2, one line naming the key, nothing written ---------------------------------

BAD = [
    ({"optimiser": {}}, "optimiser: unknown key"),
    ({"optimizer": {"lr": "fast"}}, "optimizer.lr: expected a number"),
    ({"optimizer": {"lr": -1e-3}}, "optimizer.lr: must be > 0"),
    ({"optimizer": {"lr": 0}}, "optimizer.lr: must be > 0"),
    ({"train": {"ema_decay": 1.0}}, "train.ema_decay: must be in [0, 1)"),
    ({"train": {"label_smoothing": 1.0}}, "train.label_smoothing: must be in [0, 1)"),
    ({"optimizer": {"name": "adagrad"}}, "optimizer.name: unknown value 'adagrad'"),
    ({"optimizer": {"weight_decay": -0.1}}, "optimizer.weight_decay: must be >= 0"),
    ({"optimizer": {"momentum": "high"}}, "optimizer.momentum: expected a number"),
    ({"train": {"batch_size": 0}}, "train.batch_size: must be > 0"),
    ({"train": {"batch_size": -5}}, "train.batch_size: must be > 0"),
    ({"train": {"epochs": 2.5}}, "train.epochs: expected int"),
    ({"train": {"epochs": True}}, "train.epochs: expected int"),
    ({"train": {"restore_best": 1}}, "train.restore_best: expected bool"),
    ({"train": {"nonfinite": "ignore"}}, "train.nonfinite: unknown value 'ignore'"),
    ({"train": {"monitor": "val/parity/accuracy"}}, "train.monitor: unknown metric"),
    ({"train": {"freeze": ["trunk"]}}, "train.freeze: unknown parameter subtree 'trunk'"),
    ({"train": {"steps_per_call": 0}}, "train.steps_per_call: must be -1 (auto) or > 0"),
    ({"tasks": ["digit", "colour"]}, "tasks: unknown task 'colour'"),
    ({"tasks": []}, "tasks: expected a non-empty list"),
    ({"tasks": ["digit", "digit"]}, "tasks: expected a non-empty list of distinct"),
    ({"tasks": ["color"]}, "tasks: task 'color' needs 'color' labels"),
    ({"model": {"name": "resnet152"}}, "model.name: unknown value 'resnet152'"),
    ({"model": {"features": [32, "64"]}}, "model.features: expected a list of int"),
    ({"model": {"dropout": 1.5}}, "model.dropout: must be in [0, 1)"),
    ({"model": {"pool": "max"}}, "model.pool: unknown value 'max'"),
    ({"schedule": {"name": "warmup"}}, "schedule.name: unknown value 'warmup'"),
    ({"schedule": {"name": "step", "gamma": -1}}, "schedule.gamma: must be >= 0"),
    ({"schedule": {"gamma": 0.5}}, "schedule.gamma: not an option of this schedule (an option of schedule step)"),
    ({"loss_weights": {"parity": 2.0}}, "loss_weights.parity: no such task configured"),
    ({"tasks": ["digit", "parity"], "loss_weights": {"parity": -1}}, "loss_weights.parity: expected a number >= 0"),
    ({"data": {"limit": 0}}, "data.limit: must be > 0"),
    ({"data": {"dataset": "cifar10"}}, "data.dataset: unknown value 'cifar10'"),
    ({"data": {"val_size": -1}}, "data.val_size: must be > 0"),
    ({"data": None}, "data: expected a dict"),
    ({"data": {"compose": "repair"}}, "data.compose: not an option of this dataset (an option of dataset two_digit)"),
    ({"data": {"dataset": "two_digit", "compose": "gpu"}, "tasks": ["top"]}, "data.compose: unknown value 'gpu'"),
    ({"data": {"dataset": "two_digit", "compose": "repair"}, "tasks": ["top", "sum"]},
     "data.compose: 'repair' re-pairs digits, which only tasks top, bottom follow"),
    ({"seed": None}, "seed: must not be None"),
    ({"seed": -1}, "seed: must be >= 0"),
    ({"seeds": 0}, "seeds: must be > 0"),
    ({"augment": {"rotate": -5}}, "augment.rotate: must be >= 0"),
    ({"mtl": {"strategy": "pcgard"}}, "mtl.strategy: unknown value 'pcgard'"),
    ({"sweep": {"model.features": [[8]]}}, "sweep.model.features: cannot be swept"),
    ({"init": {"params": ["head"]}}, "init.params: unknown parameter subtree 'head'"),
    ({"name": "my run!"}, "name: expected letters, digits"),
]


@pytest.mark.parametrize("overrides, message", BAD, ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(BAD)])
def test_malformed_config_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, overrides, message):
    path = tmp_path / "bad.py"
    path.write_text("CONFIG = " + repr(overrides) + "\n")
    root = tmp_path / "runs"
    assert run.main([str(path), "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}"), err
    assert err.count("\n") == 1
    assert not root.exists()


def test_there_are_at_least_30_malformed_configs():
    assert len(BAD) >= 30


# --- Properties of the labels and constructions ----------------------------------------------------------

digits = st.lists(st.integers(0, 9), min_size=1, max_size=50).map(lambda d: np.asarray(d, np.uint8))


@settings(max_examples=50, deadline=None)
@given(digits)
def test_label_functions(d):
    raw = {"digit": d}
    assert np.array_equal(tasks.TASKS["digit"].labels(raw), d)
    parity, threshold = tasks.TASKS["parity"].labels(raw), tasks.TASKS["threshold"].labels(raw)
    assert np.array_equal(parity, d % 2) and np.array_equal(threshold, (d >= 5).astype(int))
    for name in ("digit", "parity", "threshold"):
        labels = tasks.TASKS[name].labels(raw)
        assert labels.dtype == np.int32 and labels.min() >= 0 and labels.max() < tasks.TASKS[name].outputs


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**31 - 1), st.floats(0.0, 1.0), st.integers(0, 2**31 - 1))
def test_constructions(n, data_seed, ink, seed):
    """Images drawn from a seed (hypothesis picks count, seed and how much ink), labels 0-9."""
    rng = np.random.default_rng(data_seed)
    x = (rng.random((n, 28, 28)) < ink).astype(np.uint8) * rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
    y = rng.integers(0, 10, n).astype(np.uint8)
    colored, cl = constructions.colored(x, y, seed)
    again, _ = constructions.colored(x, y, seed)
    assert np.array_equal(colored, again) and colored.shape == (len(x), 28, 28, 3)
    for k in range(len(x)):  # The digit is in the named channel: it exceeds the noise ceiling there only.
        other = 1 - cl["color"][k]
        assert colored[k, ..., other].max() <= 128 and colored[k, ..., 2].max() <= 128
        bright = x[k] >= 200
        if bright.any():
            assert colored[k, ..., cl["color"][k]][bright].min() >= 100
    two, tl = constructions.two_digit(x, y, 5, seed)
    assert two.shape == (5, 42, 28, 1) and set(tl) == {"top", "bottom"}
    for label in tl.values():
        assert set(label.tolist()) <= set(y.tolist())
    mm, ml = constructions.multimnist(x, y, seed)
    assert mm.shape == (len(x), 28, 28, 1) and np.array_equal(ml["left"], y)
    assert mm.max() <= max(x.max(), 0)  # Max-combination never brightens a pixel.
