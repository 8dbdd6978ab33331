"""Data parallel: 8 fake CPU devices give the loss curves of one device (seeds x data parallel)."""

from __future__ import annotations

import json
import os
import pprint
import subprocess
import sys

import numpy as np

from conftest import tiny_config


def _run(tmp_path, name, cfg, devices):
    path = tmp_path / f"{name}.py"
    path.write_text("CONFIG = " + pprint.pformat(cfg) + "\n")
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}
    code = ("import jax, sys; from mtljax import run; "
            f"assert len(jax.devices()) == {devices}; sys.exit(run.main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, str(path), "--root", str(tmp_path / name), "--seeds", "2"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = next((tmp_path / name / cfg["name"]).iterdir())
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_eight_devices_match_one(tmp_path, tiny_data_dir):
    cfg = tiny_config(tiny_data_dir, train={"epochs": 2, "batch_size": 40})
    one = _run(tmp_path, "one", cfg, 1)
    eight = _run(tmp_path, "eight", cfg, 8)
    for a, b in zip(one, eight):
        for key in ("train/loss", "val/loss", "val/digit/loss"):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-4, err_msg=key)
            np.testing.assert_allclose(b["seeds"][key], a["seeds"][key], rtol=1e-4, err_msg=key)
