"""The public MTL API (mtljax.mtl, docs/api.md) in a user's own loop, and `mtljax.load_run`."""

from __future__ import annotations

import json
import pprint

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mtljax
from mtljax import mtl, run, tasks
from mtljax.data import augment, build_splits
from mtljax.train import step as train_step
from conftest import tiny_config
from examples import own_loop


def _toy():
    """A shared trunk and two heads on 5 inputs; the task losses of a batch."""
    params = {"trunk": {"w": jnp.linspace(-1, 1, 15).reshape(5, 3)}, "head_a": jnp.asarray([1.0, -2.0, 0.5]),
              "head_b": jnp.asarray([0.3, 0.2, -1.0])}
    x = jnp.asarray(np.random.default_rng(0).normal(size=(8, 5)), jnp.float32)

    def losses(p, x):
        z = jnp.tanh(x @ p["trunk"]["w"])
        return jnp.stack([jnp.mean((z @ p["head_a"] - 1) ** 2), jnp.mean((z @ p["head_b"] + 1) ** 2)])

    return params, x, losses


def test_task_gradients_are_the_jacobian():
    params, x, losses = _toy()
    values, jac = mtl.task_gradients(losses, params, x)
    np.testing.assert_allclose(values, losses(params, x))
    expected = jax.jacrev(losses)(params, x)
    # To float32 rounding: the two compile to differently ordered sums (1.7e-6 apart seen).
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), jac, expected)


@pytest.mark.parametrize("name", ["upgrad", "mgda", "equal"])
def test_optax_block_applies_the_method_to_the_shared_subtree(name):
    params, x, losses = _toy()
    tx = optax.chain(mtl.aggregation(name, 2, shared=("trunk",)), optax.sgd(1.0))
    state = tx.init(params)
    values, jac = mtl.task_gradients(losses, params, x)
    updates, state = tx.update(jac, state, params, losses=values)
    g, _ = mtl.flatten(jac["trunk"])
    direction = mtl.aggregate(name, g) if name != "equal" else g.sum(0)
    np.testing.assert_allclose(-updates["trunk"]["w"].ravel(), direction, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(-updates["head_a"], jac["head_a"][0], rtol=1e-6)  # Its own task's gradient.
    assert int(state[0].step) == 1


@pytest.mark.parametrize("call, message", [
    (lambda: mtl.aggregate("nope", jnp.ones((2, 3))), "unknown MTL method 'nope'"),
    (lambda: mtl.aggregate("cagrad", jnp.ones((2, 3)), c=-1.0), "cagrad.c: must be >= 0"),
    (lambda: mtl.aggregate("upgrad", jnp.ones((2, 3)), c=0.1), "upgrad.c: unknown option of 'upgrad'"),
    (lambda: mtl.aggregate("pcgrad", jnp.ones((2, 3))), "'pcgrad' draws random numbers: pass key="),
    (lambda: mtl.aggregate("uw", jnp.ones((2, 3))), "'uw' is a loss weighting"),
    (lambda: mtl.weigh("upgrad", jnp.ones(2)), "'upgrad' is a gradient method"),
    (lambda: mtl.aggregation("uw", 2), "'uw' needs parameters of its own"),
    (lambda: mtl.aggregation("famo", 2), "'famo' needs the losses after the update"),
    (lambda: mtl.aggregation("modo", 2), "'modo' needs independent samples of the batch"),
])
def test_bad_names_and_options_say_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_samples_rows_average_to_the_batch_losses():
    spec = type("Spec", (), {"tasks": {t: tasks.get(t) for t in ("digit", "parity")}})()
    rng = np.random.default_rng(0)
    outputs = {"digit": jnp.asarray(rng.normal(size=(10, 10)), jnp.float32),
               "parity": jnp.asarray(rng.normal(size=(10, 2)), jnp.float32)}
    batch = {"digit": jnp.asarray(rng.integers(0, 10, 10)), "parity": jnp.asarray(rng.integers(0, 2, 10))}
    whole = train_step.task_losses_of(spec, outputs, batch)
    parts = train_step.task_losses_of(spec, outputs, batch, parts=3)  # Parts of 4, 3 and 3 examples.
    assert parts.shape == (3, 2)
    np.testing.assert_allclose(parts.mean(0), whole, rtol=1e-5)
    ce = optax.softmax_cross_entropy_with_integer_labels(outputs["digit"], batch["digit"])
    np.testing.assert_allclose(parts[1, 0], ce[1::3].sum() * 3 / 10, rtol=1e-5)


def test_own_loop_example_trains(tiny_data_dir):
    results = own_loop.main(["--steps", "40", "--methods", "upgrad", "pcgrad", "--data-dir", str(tiny_data_dir),
                             "--source", "synthetic"])
    for name, result in results.items():
        assert result["last_loss"] < result["first_loss"], name
    assert results["upgrad"]["accuracy"] == results["pcgrad"]["accuracy"]  # Two tasks: the same direction.


def test_load_run_reproduces_the_recorded_test_accuracy(tmp_path, tiny_data_dir):
    path = tmp_path / "lr.py"
    path.write_text("CONFIG = " + pprint.pformat(tiny_config(tiny_data_dir, name="lr", tasks=["digit", "parity"],
                                                             mtl={"strategy": "famo"}, train={"epochs": 1})))
    assert run.main([str(path), "--root", str(tmp_path / "runs"), "--seeds", "2"]) == 0
    run_dir = next((tmp_path / "runs" / "lr").iterdir())
    cfg, model, variables = mtljax.load_run(run_dir, seed=1)
    test = build_splits(cfg)["test"]
    outputs = model.apply(variables, augment.to_float(jnp.asarray(test.images)), train=False)
    summary = json.loads((run_dir / "summary.json").read_text())
    for t in ("digit", "parity"):
        accuracy = float(np.mean(np.asarray(outputs[t]).argmax(-1) == test.labels[t]))
        assert accuracy == pytest.approx(summary["test_seeds"][1][f"{t}/accuracy"], abs=1e-6)
    with pytest.raises(ValueError, match="the run has seeds 0..1"):
        mtljax.load_run(run_dir, seed=2)


def test_famo_logits_follow_the_losses_after_each_update(tiny_data_dir):
    """The step gives FAMO the same batch's losses after the update: its logits move by Alg. 1."""
    from mtljax import config as config_lib
    from mtljax.mtl.methods import famo
    from mtljax.train import experiment

    exp = experiment.build_experiment(config_lib.resolve(tiny_config(
        tiny_data_dir, tasks=["digit", "parity"], mtl={"strategy": "famo", "famo": {"lr": 0.5}})))
    state, rng = jax.tree.map(lambda a: a[0], exp.init_state()), exp.dropout_rng()[0]
    split = exp.splits["train"]
    batch = {"image": jnp.asarray(split.images[:50]), **{t: jnp.asarray(y[:50]) for t, y in split.labels.items()}}
    spec = exp.step_spec()
    new, metrics = jax.jit(train_step.make_train_step(spec))(state, batch, rng)
    key = jax.random.fold_in(rng, 0)
    after = train_step.task_losses(spec, exp.model, new.params, state.batch_stats, batch, key)[0]
    before = jnp.stack([metrics["digit/loss"], metrics["parity/loss"]])
    expected = famo.famo_after_update(state.mtl, before, after, {"options": {"lr": 0.5, "decay": 0.001}})
    np.testing.assert_allclose(new.mtl["logits"], expected["logits"], rtol=1e-4, atol=1e-7)
    assert float(jnp.abs(new.mtl["logits"]).max()) > 0
