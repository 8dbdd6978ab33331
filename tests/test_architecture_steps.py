"""Every strategy with every architecture: the aggregated step splits shared from task-specific
parameters as the architecture declares, and the representation-gradient mode is exact."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtljax import config, models
from mtljax.mtl import base, gradients, strategies
from mtljax.train import experiment, step
from conftest import tiny_config

ARCHITECTURES = list(models.ARCHITECTURES.names())
# Aggregators given as definitions: the sum of the task gradients, and nothing for the shared part.
SUM = base.aggregator(lambda g, losses, state, ctx: (g.sum(0), jnp.ones(g.shape[0]), state))
NONE = base.aggregator(lambda g, losses, state, ctx: (0 * g[0], jnp.ones(g.shape[0]), state))
ON_REPRESENTATION = functools.partial(dataclasses.replace, computes=gradients.representation_aggregated)


def _exp(data_dir, architecture, **sections):
    cfg = tiny_config(data_dir, model={"architecture": architecture, "dropout": 0.3}, **sections)
    return experiment.build_experiment(config.resolve(cfg))


def _grads(strategy, spec, state, batch, rng, ctx):
    """The gradient `strategy` gives for `batch` in the step `spec` describes."""
    objective = step.objective(spec, spec.model, state.batch_stats)
    return strategy.gradient(objective, state.params, state.mtl, batch, rng, ctx).grads


def _gradient(fn, spec, exp, microbatch=0):
    spec = dataclasses.replace(spec, microbatch=microbatch)
    state, rng = jax.tree.map(lambda a: a[0], exp.init_state()), exp.dropout_rng()[0]
    split = exp.splits["train"]
    batch = {"image": split.images[:40], **{t: y[:40] for t, y in split.labels.items()}}
    ctx = strategies.context(rng, state.step, 1, jnp.ones(len(exp.tasks)), spec.mtl)
    return jax.jit(lambda s, b: fn(spec, s, b, rng, ctx))(state, batch)


def _close(a, b, tol=2e-5):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=tol, atol=tol)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_aggregating_the_task_gradients_splits_shared_from_own(tiny_data_dir, architecture):
    exp = _exp(tiny_data_dir, architecture, mtl={"strategy": "equal"})
    spec = exp.step_spec()

    def three(spec, state, batch, rng, ctx):  # One program: one compilation.
        return [_grads(s, spec, state, batch, rng, ctx) for s in (spec.strategy, SUM, NONE)]

    plain, summed, none = _gradient(three, spec, exp)
    # The sum of the task gradients of the shared parameters, and each subtree's own: the plain gradient.
    _close(summed, plain)
    # A zero direction zeroes exactly the shared subtrees; the others keep their task's gradient.
    assert set(spec.shared) & set(none)
    for name, sub in none.items():
        expected = jax.tree.map(jnp.zeros_like, plain[name]) if name in spec.shared else plain[name]
        _close(sub, expected)


@pytest.mark.parametrize("microbatch", [0, 10])
def test_rep_grad_with_the_sum_is_the_plain_gradient(tiny_data_dir, microbatch):
    exp = _exp(tiny_data_dir, "hard", mtl={"strategy": "upgrad", "rep_grad": True}, train={"microbatch": microbatch})
    spec = exp.step_spec()
    assert spec.strategy.computes is gradients.representation_aggregated  # Resolved from mtl.rep_grad.
    plain = _gradient(functools.partial(_grads, strategies.get("equal")), spec, exp, microbatch)
    _close(_gradient(functools.partial(_grads, ON_REPRESENTATION(SUM)), spec, exp, microbatch), plain)


def test_rep_grad_aggregates_the_representation_matrix(tiny_data_dir):
    """The aggregator sees T rows of B·D entries (the features' gradients), not the parameters'."""
    seen = {}

    def record(g, losses, state, ctx):
        seen["shape"] = g.shape
        return g.sum(0), jnp.ones(g.shape[0]), state

    exp = _exp(tiny_data_dir, "hard", mtl={"strategy": "upgrad", "rep_grad": True})
    _gradient(functools.partial(_grads, ON_REPRESENTATION(base.aggregator(record))), exp.step_spec(), exp)
    assert seen["shape"] == (3, 40 * 16)  # Three tasks; 40 images × the dense layer's 16 features.


@pytest.mark.parametrize("strategy", ["uw", "gradnorm"])
def test_a_train_step_of_strategies_with_parameters_or_state(tiny_data_dir, strategy):
    """UW's own parameters and GradNorm's state beside a soft-sharing model's (the experiment files
    train every architecture with static weights, tests/test_experiments.py)."""
    exp = _exp(tiny_data_dir, "cgc", mtl={"strategy": strategy})
    train_step = jax.jit(step.make_train_step(dataclasses.replace(exp.step_spec(), microbatch=0)))
    state, rng = jax.tree.map(lambda a: a[0], exp.init_state()), exp.dropout_rng()[0]
    split = exp.splits["train"]
    batch = {"image": split.images[:40], **{t: y[:40] for t, y in split.labels.items()}}
    new, metrics = train_step(state, batch, rng)
    assert float(metrics["nan/steps"]) == 0 and np.isfinite(float(metrics["loss"]))
    moved = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(state.params))]
    assert all(moved) or strategy == "gradnorm"  # GradNorm keeps its weights in the state, not in params.
    assert any(moved)
