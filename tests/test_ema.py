"""The moving average of the parameters (`train.ema_decay`): its update, what uses it, old checkpoints."""

from __future__ import annotations

import json
import pprint

import jax
import jax.numpy as jnp
import numpy as np

from mtljax import config, evaluate, run
from mtljax.train import checkpoint, epoch, evaluation, experiment
from mtljax.train import state as state_lib
from conftest import tiny_config


def test_ema_update_warms_up_decays_and_keeps_constants():
    ema, new = {"a": jnp.zeros(3), "frozen": jnp.asarray([0.1, 1 / 3, 7.7])}, {"a": jnp.ones(3)}
    new["frozen"] = ema["frozen"]
    out = state_lib.ema_update(ema, new, 0.99, jnp.asarray(0))  # Step 0: d = 1/10.
    np.testing.assert_allclose(out["a"], 0.9, rtol=1e-6)
    assert np.array_equal(out["frozen"], ema["frozen"])  # A value that did not move stays bit-identical.
    late = state_lib.ema_update(ema, new, 0.99, jnp.asarray(10_000))  # Warm-up over: d = decay.
    np.testing.assert_allclose(late["a"], 0.01, rtol=1e-5)


def test_a_run_evaluates_and_checkpoints_the_average(tmp_path, tiny_data_dir):
    """With ema_decay the state carries the average; validation, test and the checkpoints' variables
    are the average's (evaluating it again gives the summary's numbers), not the last step's."""
    cfg = tiny_config(tiny_data_dir, train={"ema_decay": 0.9})
    path = tmp_path / "tiny.py"
    path.write_text("CONFIG = " + pprint.pformat(cfg) + "\n")
    assert run.main([str(path), "--root", str(tmp_path / "runs")]) == 0
    run_dir = next((tmp_path / "runs" / "tiny").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    exp = experiment.build_experiment(config.resolve({**cfg, "name": "tiny"}))
    ckpts = checkpoint.RunCheckpoints(run_dir)
    try:
        state, _ = ckpts.restore(exp.init_state(), "best")
        variables = ckpts.load_variables("best")
    finally:
        ckpts.close()
    assert state.ema and all(jax.tree.leaves(jax.tree.map(
        lambda a, b: bool(jnp.array_equal(a, b)), variables["params"], state.ema["params"])))
    assert not all(jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)),
                                                state.ema["params"], state.params)))
    _, eval_fn = epoch.make_epoch_fns(exp)
    test = evaluation.evaluate_split(eval_fn, state, evaluation.eval_data(exp.splits["test"], exp), exp)[0][0]
    current = evaluation.evaluate_split(eval_fn, state.replace(ema=None), evaluation.eval_data(exp.splits["test"], exp),
                                     exp)[0][0]
    assert test["digit/loss"] == summary["test"]["digit/loss"] != current["digit/loss"]
    assert evaluate.evaluate_run(run_dir, "best", ema=False)[0]["digit/loss"] == current["digit/loss"]


def test_a_checkpoint_from_before_the_ema_field_restores(tmp_path, tiny_data_dir):
    """Checkpoints written before TrainState had `ema` (a dict of its other fields) still restore,
    for --resume (train and best states) and for evaluation."""
    state = experiment.build_experiment(config.resolve(tiny_config(tiny_data_dir))).init_state()
    old = checkpoint._without_ema_field(state)
    assert "ema" not in old and old["params"] is state.params
    ckpts = checkpoint.RunCheckpoints(tmp_path / "run")
    ckpts.save(3, {"train": old, "best": old}, {"epoch": 1})
    ckpts.save_best(1, old, {"epoch": 1})
    for which, template in (("latest", {"train": state, "best": state}), ("best", state)):
        restored, meta = ckpts.restore(template, which)
        assert meta == {"epoch": 1}
        assert jax.tree.structure(restored) == jax.tree.structure(template)
        assert all(jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), restored, template)))
    ckpts.close()
