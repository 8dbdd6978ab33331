"""Every experiment file validates and trains a few steps; transfer keeps its trunk frozen;
single-task baselines land in the summary."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import pprint
import runpy
import tempfile
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

from mtljax import config, models, run
from mtljax.data import sources
from mtljax.train import checkpoint, epoch, experiment
from conftest import tiny_config

EXPERIMENTS = sorted(p for p in Path("experiments").glob("**/*.py") if p.stem != "__init__")
TINY = ["data.val_size=100", "data.limit=100", "train.batch_size=50", "init.run=None", "seeds=1"]
TINY_PAIRS = ["data.train_pairs=100", "data.val_pairs=50", "data.test_pairs=50"]  # Datasets built from pairs.


# <problem>_<architecture>.py differ from <problem>_hard.py in the architecture only, which
# tests/test_architecture_*.py train: these are resolved, not trained (each compile costs seconds).
RESOLVED_ONLY = [p for p in EXPERIMENTS if "_" in p.stem and not p.stem.endswith("_hard")
                 and (p.parent / f"{p.stem.split('_')[0]}_hard.py").exists()
                 and p.stem.split("_", 1)[1] in models.ARCHITECTURES.names()]


def _stand_in(path: Path) -> list[str]:
    """For a file that reads users' files (not MNIST), `data.source` pointed at a small synthetic
    stand-in of the same kind (8×8 items, columns `label` and `writer_half`), written once."""
    source = runpy.run_path(str(path)).get("CONFIG", {}).get("data", {}).get("source", "mnist")
    kind = sources.parse(source)[0]
    if kind == "mnist":
        return []
    root = Path(tempfile.gettempdir()) / f"mtljax-test-stand-in-{os.getpid()}"
    if not root.exists():
        root.mkdir()
        atexit.register(shutil.rmtree, root, True)
    images = np.random.default_rng(0).integers(0, 256, (300, 8, 8), dtype=np.uint8)
    labels, half = np.arange(300) % 10, (np.arange(300) >= 150).astype(np.uint8)
    if kind == "npz" and not (root / "x.npz").exists():
        np.savez(root / "x.npz", x_train=images, y_train=labels, y_train_writer_half=half)
    if kind == "idx" and not (root / "idx").exists():  # 28×28 items: the Multi-* constructions need them.
        (root / "idx").mkdir(parents=True)
        items = np.random.default_rng(0).integers(0, 256, (300, 28, 28), dtype=np.uint8)
        for split, n in (("train", 300), ("t10k", 100)):
            _write_idx(root / "idx" / f"{split}-images-idx3-ubyte", items[:n])
            _write_idx(root / "idx" / f"{split}-labels-idx1-ubyte", labels[:n].astype(np.uint8))
    if kind == "folder" and not (root / "folder").exists():
        (root / "folder").mkdir(parents=True)
        for i, image in enumerate(images):
            Image.fromarray(image).save(root / "folder" / f"{i}.png")
        rows = [f"{i}.png,{labels[i]},{half[i]}" for i in range(300)]
        (root / "folder" / "labels.csv").write_text("\n".join(["file,label,writer_half", *rows]) + "\n")
    return [f"data.source={kind}:{root / {'npz': 'x.npz', 'idx': 'idx'}.get(kind, 'folder')}"]


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.tobytes())


def _tiny_stages(path: Path, extra=()) -> list:
    """The stages of an experiment file with the tiny overrides (and pairs where it builds them)."""
    stand_in = _stand_in(path)
    pairs = TINY_PAIRS if "train_pairs" in config.load_stages(path, stand_in)[0]["data"] else []
    return config.load_stages(path, TINY + pairs + stand_in + list(extra))


def _program(path: Path) -> str:
    """What a few tiny steps of `path` exercise: its tiny config without the keys that only set how
    long it trains (epochs, the step schedule's boundary, which checkpoint is restored) or its name."""
    stages = []
    for cfg in _tiny_stages(path):
        cfg = config.thaw(cfg)
        cfg.pop("name")
        for section, key in (("train", "epochs"), ("train", "restore_best"), ("schedule", "step_epochs")):
            cfg[section].pop(key, None)
        stages.append(cfg)
    return json.dumps(stages, sort_keys=True, default=str)


# A file whose tiny steps are an earlier file's (it differs in run length only) is resolved, not trained.
_FIRST: dict[str, Path] = {}
SAME_PROGRAM = [p for p in sorted(EXPERIMENTS, key=lambda p: (p.parent.name == "ablations", p))  # Main files first.
                if p not in RESOLVED_ONLY and _FIRST.setdefault(_program(p), p) != p]


@pytest.mark.parametrize("path", SAME_PROGRAM, ids=lambda p: p.stem)
def test_run_length_variant_is_resolved(path):
    assert _tiny_stages(path)


@pytest.mark.parametrize("path", RESOLVED_ONLY, ids=lambda p: p.stem)
def test_architecture_variant_is_its_hard_recipe_with_another_architecture(path):
    problem, architecture = path.stem.split("_", 1)
    cfg, hard = config.thaw(config.load_experiment(path)), config.thaw(config.load_experiment(
        path.parent / f"{problem}_hard.py"))
    assert cfg["model"].pop("architecture") == architecture and hard["model"].pop("architecture") == "hard"
    cfg["model"].pop(architecture, None)
    assert {**cfg, "name": ""} == {**hard, "name": ""}


@pytest.mark.parametrize("path", [p for p in EXPERIMENTS if p not in RESOLVED_ONLY + SAME_PROGRAM], ids=lambda p: p.stem)
def test_experiment_file_trains_a_few_steps(path, tiny_data_dir):
    for cfg in _tiny_stages(path, [f"data.dir={tiny_data_dir}"]):
        exp = experiment.build_experiment(cfg)
        train_fn, _ = epoch.make_epoch_fns(exp)
        state, data = exp.init_state(), epoch.device_split(exp.splits["train"])
        n = len(exp.seeds)  # One seed; a file with preference rays has one replica per ray.
        sums = epoch.zero_sums(exp.tasks, n)
        idx = np.tile(np.arange(100, dtype=np.int32).reshape(1, 2, 50), (n, 1, 1))
        state, sums = train_fn(state, sums, data, idx, exp.dropout_rng())
        assert int(state.step[0]) == 2 and np.all(np.isfinite(np.asarray(sums["loss"])))


def _write(tmp_path, text):
    path = tmp_path / "exp.py"
    path.write_text(text)
    return str(path)


def _params(run_dir, which):
    ckpts = checkpoint.RunCheckpoints(Path(run_dir))
    try:
        return ckpts.load_params(which)
    finally:
        ckpts.close()


def test_transfer_freezes_the_trunk_bit_for_bit(tmp_path, tiny_data_dir):
    first = tiny_config(tiny_data_dir, name="digit_stage", tasks=["digit"])
    second = tiny_config(tiny_data_dir, name="parity_stage", tasks=["parity"],
                         init={"run": "stage:digit_stage", "params": ["backbone"]},
                         train={"freeze": ["backbone"]}, optimizer={"lr": 1e-2})
    path = _write(tmp_path, f"STAGES = [{pprint.pformat(first)}, {pprint.pformat(second)}]\n")
    root = tmp_path / "runs"
    assert run.main([path, "--root", str(root)]) == 0
    stage1 = next((root / "digit_stage").iterdir())
    stage2 = next((root / "parity_stage").iterdir())
    before, after = _params(stage1, "best")["backbone"], _params(stage2, "latest")["backbone"]
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after)):
        np.testing.assert_array_equal(a, b)
    # The new head did learn.
    history = [json.loads(x) for x in (stage2 / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["train/parity/loss"] < history[0]["train/parity/loss"]


def test_transfer_from_a_mismatched_trunk_is_a_clear_error(tmp_path, tiny_data_dir, capsys):
    first = tiny_config(tiny_data_dir, name="digit_stage", tasks=["digit"], train={"epochs": 1})
    second = tiny_config(tiny_data_dir, name="wide_stage", tasks=["parity"], model={"features": [4, 8, 16]},
                         init={"run": "stage:digit_stage", "params": ["backbone"]})
    path = _write(tmp_path, f"STAGES = [{pprint.pformat(first)}, {pprint.pformat(second)}]\n")
    assert run.main([path, "--root", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "init.params 'backbone'" in err and "\n" == err[-1] and err.count("\n") == 1


def test_single_task_baselines_in_the_summary(tmp_path, tiny_data_dir):
    cfg = tiny_config(tiny_data_dir, tasks=["digit", "parity"], single_task=True, train={"epochs": 1})
    root = tmp_path / "runs"
    assert run.main([_write(tmp_path, f"CONFIG = {pprint.pformat(cfg)}\n"), "--root", str(root)]) == 0
    run_dir = next((root / "tiny").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary["single_task"]) == {"digit", "parity"}
    assert "parity/accuracy" in summary["single_task"]["parity"]
    single = json.loads((run_dir / "single" / "parity" / "config.json").read_text())
    assert single["tasks"] == ["parity"]


def test_stage_reference_must_exist(tmp_path, tiny_data_dir, capsys):
    cfg = tiny_config(tiny_data_dir, init={"run": "stage:nope", "params": ["backbone"]})
    assert run.main([_write(tmp_path, f"CONFIG = {pprint.pformat(cfg)}\n"), "--root", str(tmp_path / "r")]) == 2
    assert "names no earlier stage" in capsys.readouterr().err
