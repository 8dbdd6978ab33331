"""Checkpoint round trip, and clear errors for mismatched or damaged checkpoints."""

from __future__ import annotations

import shutil
import time

import jax
import jax.numpy as jnp
import pytest

from mtljax import config
from mtljax.train import checkpoint, experiment
from conftest import tiny_config


def _state(data_dir, **model):
    return experiment.build_experiment(config.resolve(tiny_config(data_dir, model=model))).init_state()


def test_round_trip_is_exact(tmp_path, tiny_data_dir):
    state = _state(tiny_data_dir)
    state = state.replace(step=jnp.asarray([7], jnp.int32))
    ckpts = checkpoint.RunCheckpoints(tmp_path / "run", keep=2)
    meta = {"epoch": 3, "history": [{"epoch": 1, "val/loss": 0.5}], "early_stopping": {"best": 0.5}}
    ckpts.save(3, state, meta)
    ckpts.save_best(3, state, meta)
    template = _state(tiny_data_dir)
    for which in ("latest", "best"):
        restored, restored_meta = ckpts.restore(template, which)
        assert restored_meta == meta
        same = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), restored, state)
        assert all(jax.tree.leaves(same))
        assert int(restored.step[0]) == 7
    ckpts.close()


def test_keeps_latest_few(tmp_path, tiny_data_dir):
    state = _state(tiny_data_dir)
    ckpts = checkpoint.RunCheckpoints(tmp_path / "run", keep=2)
    for epoch in range(1, 5):
        ckpts.save(epoch, state, {"epoch": epoch})
        if epoch == 2:
            ckpts.save_best(epoch, state, {"epoch": epoch})
    assert ckpts.latest.all_steps() == [3, 4] and ckpts.best.all_steps() == [2]
    ckpts.save(4, state, {"epoch": 4, "again": True})  # The same step again replaces it.
    assert ckpts.latest.all_steps() == [3, 4] and ckpts.restore(state, "latest")[1]["again"]
    ckpts.close()


def test_mismatch_and_damage_are_clear_errors(tmp_path, tiny_data_dir):
    ckpts = checkpoint.RunCheckpoints(tmp_path / "run")
    with pytest.raises(checkpoint.CheckpointError, match="no latest checkpoint"):
        ckpts.restore(_state(tiny_data_dir), "latest")
    ckpts.save(1, _state(tiny_data_dir), {"epoch": 1})
    with pytest.raises(checkpoint.CheckpointError, match="cannot restore"):
        ckpts.restore(_state(tiny_data_dir, features=[4, 8, 16]), "latest")
    shutil.rmtree(tmp_path / "run" / "ckpt" / "latest" / "1" / "state")
    with pytest.raises(checkpoint.CheckpointError, match="cannot restore"):
        ckpts.restore(_state(tiny_data_dir), "latest")
    ckpts.close()


def test_queued_epoch_writes_own_their_data(tmp_path, tiny_data_dir):
    """save_epoch returns before writing, on copies: the caller may donate (delete) its arrays and
    grow its history at once; the checkpoint still holds what was passed, latest then best."""
    state = _state(tiny_data_dir)
    expected = jax.tree.map(lambda a: jnp.array(a, copy=True), state)
    ckpts = checkpoint.RunCheckpoints(tmp_path / "run")
    history = [{"epoch": 1}]
    ckpts.save_epoch(5, {"train": state, "best": state}, {"history": history}, best_epoch=1)
    for leaf in jax.tree.leaves(state):
        leaf.delete()  # What donating the state to the next train call does.
    history.append({"epoch": 2})
    ckpts.wait()
    assert ckpts.latest.all_steps() == [5] and ckpts.best.all_steps() == [1]
    for which in ("latest", "best"):
        template = {"train": expected, "best": expected} if which == "latest" else expected
        restored, meta = ckpts.restore(template, which)
        assert meta == {"history": [{"epoch": 1}]}
        assert all(jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), restored, template)))
    ckpts.close()


def test_an_exception_waits_for_the_queued_writes(tmp_path, tiny_data_dir, monkeypatch):
    """Leaving `finishing_writes` by an exception first finishes the queued writes (the trainer's
    loop: a NaN stop must not lose the epoch before it); a failed write is raised by the next call."""
    real_write = checkpoint.RunCheckpoints._write

    def slow(manager, step, tree, meta):
        time.sleep(0.5)
        if step == 2:
            raise OSError(28, "No space left on device")
        return real_write(manager, step, tree, meta)

    monkeypatch.setattr(checkpoint.RunCheckpoints, "_write", staticmethod(slow))
    state = _state(tiny_data_dir)
    ckpts = checkpoint.RunCheckpoints(tmp_path / "run")
    with pytest.raises(ValueError, match="stop"):
        with ckpts.finishing_writes():
            ckpts.save_epoch(1, {"train": state, "best": state}, {"epoch": 1})
            raise ValueError("stop")
    assert ckpts.latest.all_steps() == [1]
    ckpts.save_epoch(2, {"train": state, "best": state}, {"epoch": 2})
    with pytest.raises(OSError, match="No space"):
        ckpts.save_epoch(3, {"train": state, "best": state}, {"epoch": 3})
    ckpts.wait()  # Nothing was queued after the failure.
    assert ckpts.latest.all_steps() == [1]
    ckpts.close()
