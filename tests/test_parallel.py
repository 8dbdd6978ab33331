"""Data parallel: 8 fake CPU devices give the loss curves of one device (seeds x data parallel),
with a soft-sharing architecture (hard sharing: tests/test_strategy_runs.py)."""

from __future__ import annotations

import json
import os
import pprint
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import cpu_devices_env, tiny_config


def _start(tmp_path, name, cfg, devices):
    """Starts a run of `cfg` on `devices` fake CPU devices in a subprocess (its output to a file)."""
    path = tmp_path / f"{name}.py"
    path.write_text("CONFIG = " + pprint.pformat(cfg) + "\n")
    env = cpu_devices_env(devices)
    code = ("import jax, sys; from mtljax import run; "
            f"assert len(jax.devices()) == {devices}; sys.exit(run.main(sys.argv[1:]))")
    with (tmp_path / f"{name}.log").open("w") as log:
        return subprocess.Popen([sys.executable, "-c", code, str(path), "--root", str(tmp_path / name), "--seeds", "2"],
                                env=env, stdout=log, stderr=subprocess.STDOUT)


def _history(tmp_path, name, cfg, proc):
    """The metrics of a started run once it has finished."""
    try:
        proc.wait(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 0, (tmp_path / f"{name}.log").read_text()[-2000:]
    run_dir = next((tmp_path / name / cfg["name"]).iterdir())
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.long(30)
@pytest.mark.parametrize("architecture", ["ple"])  # Hard sharing: tests/test_strategy_runs.py, 8 methods.
def test_eight_devices_match_one(tmp_path, tiny_data_dir, architecture):
    cfg = tiny_config(tiny_data_dir, train={"epochs": 2, "batch_size": 40}, model={"architecture": architecture})
    # Both at once: each spends most of its time compiling, on one core.
    procs = {name: _start(tmp_path, name, cfg, devices) for name, devices in (("one", 1), ("eight", 8))}
    one, eight = (_history(tmp_path, name, cfg, proc) for name, proc in procs.items())
    for a, b in zip(one, eight):
        for key in ("train/loss", "val/loss", "val/digit/loss"):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-4, err_msg=key)
            np.testing.assert_allclose(b["seeds"][key], a["seeds"][key], rtol=1e-4, err_msg=key)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(tmp_path, tiny_data_dir):
    """Two local processes (jax.distributed over loopback, one CPU device each) train as one."""
    cfg = tiny_config(tiny_data_dir, train={"epochs": 2, "batch_size": 40})
    first = _start(tmp_path, "one", cfg, 1)  # Beside the two processes, as above.
    path = tmp_path / "two.py"
    path.write_text("CONFIG = " + pprint.pformat(cfg) + "\n")
    port = _free_port()
    procs = []
    for index in range(2):
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
               "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": str(index)}
        procs.append(subprocess.Popen([sys.executable, "-m", "mtljax.run", str(path), "--root", str(tmp_path / "two"),
                                       "--seeds", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    outputs = [p.communicate(timeout=600) for p in procs]
    one = _history(tmp_path, "one", cfg, first)
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    assert "epoch   2 |" in outputs[0][0] and "epoch   2 |" not in outputs[1][0]  # Process 0 logs.
    run_dirs = list((tmp_path / "two" / cfg["name"]).iterdir())
    assert len(run_dirs) == 1  # Both processes trained into process 0's run directory.
    two = [json.loads(line) for line in (run_dirs[0] / "metrics.jsonl").read_text().splitlines()]
    assert len(two) == len(one) == 2
    for a, b in zip(one, two):
        for key in ("train/loss", "val/loss", "val/digit/loss"):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-4, err_msg=key)
            np.testing.assert_allclose(b["seeds"][key], a["seeds"][key], rtol=1e-4, err_msg=key)
    summary = json.loads((run_dirs[0] / "summary.json").read_text())
    assert summary["epochs_run"] == 2 and (run_dirs[0] / "ckpt" / "best").is_dir()
