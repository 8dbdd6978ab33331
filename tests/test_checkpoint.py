"""Checkpoint round trip, and clear errors for mismatched or damaged checkpoints."""

from __future__ import annotations

import shutil

import jax
import jax.numpy as jnp
import pytest

from mtljax import checkpoint, config, trainer
from conftest import tiny_config


def _state(data_dir, **model):
    return trainer.build_experiment(config.resolve(tiny_config(data_dir, model=model))).init_state()


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
