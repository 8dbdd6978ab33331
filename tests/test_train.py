"""The pure train step, the optimizer chain, the schedules and the plateau controller."""

from __future__ import annotations

import dataclasses
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtljax import config
from mtljax.train import epoch, evaluation, experiment, monitor, optim, parallel, schedules, step
from conftest import run_codegen, tiny_config


@pytest.fixture
def tiny_exp(tiny_data_dir):
    return experiment.build_experiment(config.resolve(tiny_config(tiny_data_dir, optimizer={"lr": 1e-2})))


def _one(exp):
    """The first seed's state and key, without the seed axis, for the unbatched train step."""
    return jax.tree.map(lambda a: a[0], exp.init_state()), exp.dropout_rng()[0]


def _batch(exp, n=50):
    split = exp.splits["train"]
    return {"image": jnp.asarray(split.images[:n]), **{t: jnp.asarray(y[:n]) for t, y in split.labels.items()}}


def test_a_few_steps_lower_the_loss(tiny_exp):
    train_step = jax.jit(step.make_train_step(dataclasses.replace(tiny_exp.step_spec(), microbatch=0)))
    (state, rng), batch = _one(tiny_exp), _batch(tiny_exp)
    first = None
    for _ in range(30):
        state, metrics = train_step(state, batch, rng)
        first = first if first is not None else float(metrics["loss"])
    assert int(state.step) == 30
    assert float(metrics["loss"]) < 0.5 * first
    names = list(tiny_exp.loss_weights)
    assert set(metrics) == ({"loss", "nan/steps", "nan/grads", "nan/first"} | {f"nan/{t}" for t in names}
                            | {f"{t}/{m}" for t in names for m in ("loss", "accuracy")})
    assert float(metrics["nan/steps"]) == 0 and float(metrics["nan/first"]) == step.NO_STEP


def test_step_is_pure_and_loss_is_weighted(tiny_data_dir):
    cfg = config.resolve(tiny_config(tiny_data_dir, loss_weights={"digit": 2.0, "parity": 0.0, "threshold": 0.5}))
    exp = experiment.build_experiment(cfg)
    train_step = jax.jit(step.make_train_step(dataclasses.replace(exp.step_spec(), microbatch=0)))
    (state, rng), batch = _one(exp), _batch(exp)
    s1, m1 = train_step(state, batch, rng)
    s2, m2 = train_step(state, batch, rng)
    chex_equal = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), s1.params, s2.params)
    assert all(jax.tree.leaves(chex_equal))
    expected = 2.0 * m1["digit/loss"] + 0.5 * m1["threshold/loss"]
    np.testing.assert_allclose(m1["loss"], expected, rtol=1e-6)


def test_dropout_key_changes_every_step(tiny_data_dir):
    cfg = config.resolve(tiny_config(tiny_data_dir, model={"dropout": 0.5}, optimizer={"lr": 1e-12}))
    exp = experiment.build_experiment(cfg)
    train_step = jax.jit(step.make_train_step(dataclasses.replace(exp.step_spec(), microbatch=0)))
    (state, rng), batch = _one(exp), _batch(exp)
    state, m1 = train_step(state, batch, rng)
    _, m2 = train_step(state, batch, rng)  # Same batch and (practically) same params: only the mask differs.
    assert float(m1["loss"]) != float(m2["loss"])


def test_weight_decay_mask():
    params = {"backbone": {"Conv_0": {"kernel": 1, "bias": 2}, "Dense_0": {"kernel": 3, "bias": 4}},
              "head_digit": {"kernel": 5, "bias": 6}}
    conv = optim.decay_mask(params, "conv")
    assert conv == {"backbone": {"Conv_0": {"kernel": True, "bias": False},
                                 "Dense_0": {"kernel": False, "bias": False}},
                    "head_digit": {"kernel": False, "bias": False}}
    kernels = optim.decay_mask(params, "kernels")
    assert kernels["backbone"]["Dense_0"]["kernel"] and kernels["head_digit"]["kernel"]
    assert not kernels["head_digit"]["bias"]


def test_masked_decay_leaves_other_params_alone():
    cfg = {**config.DEFAULTS["optimizer"], "name": "sgd", "momentum": 0.0, "weight_decay": 0.1}
    tx = optim.build_optimizer(cfg, 1.0)
    params = {"Conv_0": {"kernel": jnp.ones(2)}, "Dense_0": {"kernel": jnp.ones(2)}}
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    np.testing.assert_allclose(updates["Conv_0"]["kernel"], -0.1)
    np.testing.assert_allclose(updates["Dense_0"]["kernel"], 0.0)


def test_step_schedule_in_epochs():
    sched = {"name": "step", "step_epochs": 5, "gamma": 0.1}
    fn = schedules.lr_schedule(1e-3, sched, steps_per_epoch=10, epochs=10)
    assert float(fn(0)) == pytest.approx(1e-3) and float(fn(49)) == pytest.approx(1e-3)
    assert float(fn(50)) == pytest.approx(1e-4) and float(fn(99)) == pytest.approx(1e-4)
    cosine = schedules.lr_schedule(1e-3, {**sched, "name": "cosine", "min_lr": 1e-5}, 10, 10)
    assert float(cosine(0)) == pytest.approx(1e-3) and float(cosine(100)) == pytest.approx(1e-5)


def test_onecycle_follows_its_definition():
    """The one-cycle schedule against Smith & Topin's cosine phases written out in NumPy: up from
    lr/div over the first pct_start of the steps, then down to lr/(div·final_div)."""
    sched = {"name": "onecycle", "pct_start": 0.3, "div_factor": 25.0, "final_div_factor": 1e4}
    fn = schedules.lr_schedule(1e-2, sched, steps_per_epoch=50, epochs=2)
    total, peak = 100, 1e-2
    start, end, up = peak / 25, peak / 25 / 1e4, 0.3 * total

    def reference(t):
        if t <= up:
            return start + (peak - start) * (1 - np.cos(np.pi * t / up)) / 2
        return end + (peak - end) * (1 + np.cos(np.pi * (t - up) / (total - up))) / 2

    for t in (0, 1, 15, 30, 31, 64, 99, 100):
        assert float(fn(t)) == pytest.approx(reference(t), rel=1e-5, abs=1e-8)  # float32 near the end.


def test_adam_betas_reach_the_optimizer():
    """optimizer.b1/b2: the first update of Adam with β₁ = 0.7 follows its definition (Kingma & Ba,
    Algorithm 1) from a NumPy recomputation of two steps."""
    opt = {"name": "adam", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0, "decay_on": "conv",
           "b1": 0.7, "b2": 0.9}
    tx = optim.build_optimizer(opt, 0.1)
    params = {"w": jnp.zeros(2)}
    state = tx.init(params)
    grads = [jnp.array([1.0, -2.0]), jnp.array([0.5, 3.0])]
    m, v = np.zeros(2), np.zeros(2)
    for t, g in enumerate(grads, 1):
        updates, state = tx.update({"w": g}, state, params)
        m, v = 0.7 * m + 0.3 * np.asarray(g), 0.9 * v + 0.1 * np.asarray(g) ** 2
        expected = -0.1 * (m / (1 - 0.7**t)) / (np.sqrt(v / (1 - 0.9**t)) + 1e-8)
        np.testing.assert_allclose(updates["w"], expected, rtol=1e-5)


def test_plateau_halves_after_patience_epochs():
    sched = {"name": "plateau", "factor": 0.5, "patience": 2, "cooldown": 0, "min_lr": 1e-4}
    plateau = schedules.plateau_controller(1e-3, sched)
    state = plateau.init(jnp.zeros(()))
    scales = []
    for val_loss in [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]:
        _, state = plateau.update(jnp.zeros(()), state, value=jnp.asarray(val_loss))
        scales.append(float(state.scale))
    assert scales[:3] == [1.0, 1.0, 1.0] and scales[3] == 0.5
    assert min(scales) == pytest.approx(0.1)  # Floored at min_lr / lr.
    inactive = schedules.plateau_controller(1e-3, {**sched, "name": "step"})
    state = inactive.init(jnp.zeros(()))
    for _ in range(20):
        _, state = inactive.update(jnp.zeros(()), state, value=jnp.asarray(1.0))
    assert float(state.scale) == 1.0


def test_early_stopping():
    stop = monitor.EarlyStopping("max", patience=2)
    assert stop.update(0.5, 1) and not stop.update(0.4, 2) and not stop.should_stop
    assert not stop.update(0.5, 3) and stop.should_stop and stop.best_epoch == 1
    restored = monitor.EarlyStopping("max", 2, **stop.state())
    assert restored.state() == stop.state() and restored.should_stop


def test_microbatching_gives_the_same_step(tiny_data_dir):
    """Accumulating over micro-batches is the same mean gradient, up to float summation order."""
    results = []
    for microbatch in (0, 10):
        cfg = config.resolve(tiny_config(tiny_data_dir, train={"microbatch": microbatch}))
        exp = experiment.build_experiment(cfg)
        train_step = jax.jit(step.make_train_step(dataclasses.replace(exp.step_spec(), microbatch=microbatch)))
        state, rng = _one(exp)
        results.append(train_step(state, _batch(exp), rng))
    (s0, m0), (s1, m1) = results
    for a, b in zip(jax.tree.leaves(s0.params), jax.tree.leaves(s1.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for key in m0:
        np.testing.assert_allclose(m0[key], m1[key], rtol=1e-5, err_msg=key)


def test_microbatch_config_checks(tiny_data_dir):
    with pytest.raises(config.ConfigError, match="train.microbatch: must divide"):
        config.resolve(tiny_config(tiny_data_dir, train={"batch_size": 50, "microbatch": 16}))
    with pytest.raises(config.ConfigError, match="must be -1 \\(auto\\)"):
        config.resolve(tiny_config(tiny_data_dir, train={"microbatch": -2}))
    auto = config.resolve(tiny_config(tiny_data_dir, train={"batch_size": 64}))
    assert experiment.resolve_microbatch(auto) == (32 if jax.default_backend() == "cpu" else 0)
    bn = config.resolve(tiny_config(tiny_data_dir, train={"batch_size": 64}, model={"batchnorm": True}))
    assert experiment.resolve_microbatch(bn) == 0
    mlp = config.resolve(tiny_config(tiny_data_dir, train={"batch_size": 64}, model={"name": "mlp"}))
    assert experiment.resolve_microbatch(mlp) == 0
    with pytest.raises(config.ConfigError, match="not with model.batchnorm"):
        config.resolve(tiny_config(tiny_data_dir, train={"microbatch": 10}, model={"batchnorm": True}))


def test_one_step_per_call_equals_a_scanned_chunk(tiny_data_dir):
    """The trainer's chunked call (lax.scan over steps) is the same computation as single steps."""
    finals = []
    for k in (1, 5):
        cfg = config.resolve(tiny_config(tiny_data_dir, train={"steps_per_call": k}))
        exp = experiment.build_experiment(cfg)
        train_fn, _ = epoch.make_epoch_fns(exp)
        state, data = exp.init_state(), epoch.device_split(exp.splits["train"])
        sums = epoch.zero_sums(exp.tasks, 1)
        idx = epoch.epoch_permutation(0, 1, len(exp.splits["train"]))[:250].reshape(1, 5, 50)
        for start in range(0, 5, k):
            state, sums = train_fn(state, sums, data, idx[:, start:start + k], exp.dropout_rng())
        finals.append((state, sums))
    for a, b in zip(jax.tree.leaves(finals[0]), jax.tree.leaves(finals[1])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seeds", [1, 2])
def test_padding_rows_are_no_steps(tiny_data_dir, seeds):
    """An epoch's short last call padded with rows of -1 (pad_chunk) gives exactly the state and
    sums of the unpadded call: one seed (lax.cond skips the rows) and two (vmapped: discarded)."""
    cfg = config.resolve(tiny_config(tiny_data_dir, seeds=seeds, train={"steps_per_call": 5}))
    exp = experiment.build_experiment(cfg)
    train_fn, _ = epoch.make_epoch_fns(exp)
    data = epoch.device_split(exp.splits["train"])
    idx = np.stack([epoch.epoch_permutation(s, 1, len(exp.splits["train"]))[:150].reshape(3, 50)
                    for s in exp.seeds])
    padded = epoch.pad_chunk(idx, 5)
    assert padded.shape == (seeds, 5, 50) and (padded[:, 3:] == -1).all() and (padded[:, :3] == idx).all()
    results = [train_fn(exp.init_state(), epoch.zero_sums(exp.tasks, seeds), data, i, exp.dropout_rng())
               for i in (idx, padded)]
    assert int(results[1][0].step[0]) == 3
    for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(results[1])):
        np.testing.assert_array_equal(a, b)


def test_epoch_calls_share_one_length():
    """Every call of an epoch is padded to the same length; the real steps cover the epoch once."""
    chunks = epoch.epoch_chunks(23, 10)
    assert chunks == [(0, 10), (10, 10), (20, 3)]
    assert epoch.pad_chunk(np.zeros((1, 10, 4), np.int32), 10).shape == (1, 10, 4)


def test_evaluation_in_blocks_equals_one_block(tiny_data_dir, monkeypatch):
    """eval_data cuts a split into blocks of one size, the last padded: the metrics and
    predictions equal those of one block holding the whole split."""
    exp = experiment.build_experiment(config.resolve(tiny_config(tiny_data_dir, seeds=2)))
    state = exp.init_state()
    _, evaluate = epoch.make_epoch_fns(exp)
    whole = evaluation.evaluate_split(evaluate, state, evaluation.eval_data(exp.splits["val"], exp), exp)
    monkeypatch.setattr(evaluation, "EVAL_BLOCK", 32)  # 100 examples: 3 full blocks and 4 + 28 padding.
    assert evaluation.eval_block(exp) == 32
    blocks = evaluation.evaluate_split(evaluate, state, evaluation.eval_data(exp.splits["val"], exp), exp)
    assert blocks[1]["digit"].shape == (2, 100)
    np.testing.assert_array_equal(blocks[1]["digit"], whole[1]["digit"])
    for a, b in zip(blocks[0], whole[0]):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-6)


def test_eval_block_pads_least():
    """One block size for validation and test: the largest split when it fits in one block, else
    the multiple of 32 with the fewest padded examples (100 + 10,000 -> 288: 10,368 examples
    evaluated, against 12,288 in blocks of 2048)."""
    def block(val, test):
        return evaluation.eval_block(types.SimpleNamespace(splits={"val": range(val), "test": range(test)}))

    assert block(100, 100) == 100 and block(1000, 2048) == 2048
    assert block(100, 10_000) == 288
    assert block(6000, 10_000) == 2016  # 16,128 examples against 16,384.
    for val, test in [(100, 10_000), (1000, 10_000), (5000, 5000), (2049, 3)]:
        b = block(val, test)
        assert b % 32 == 0 and evaluation.MIN_EVAL_BLOCK <= b <= evaluation.EVAL_BLOCK
        padded = -(-val // b) * b + -(-test // b) * b
        assert padded == min(-(-val // c) * c + -(-test // c) * c for c in range(256, 2049, 32))


def _programs_run(exp):
    """Initial state, then one train call of 3 steps (every seed on the same batches) and an
    evaluation of the validation split."""
    state, n_seeds = exp.init_state(), len(exp.seeds)
    train_fn, eval_fn = epoch.make_epoch_fns(exp)
    data = epoch.device_split(exp.splits["train"])
    idx = np.broadcast_to(np.arange(150, dtype=np.int32).reshape(1, 3, 50), (n_seeds, 3, 50)).copy()
    initial = jax.tree.map(np.asarray, (state.params, state.opt_state))
    state, sums = train_fn(state, epoch.zero_sums(exp.tasks, n_seeds), data, idx, exp.dropout_rng())
    val = exp.splits["val"]
    losses = eval_fn(state.params, state.batch_stats, jnp.asarray(val.images), {t: jnp.asarray(y) for t, y in val.labels.items()})
    return initial, jax.tree.map(np.asarray, (sums, state.params, losses))


@pytest.mark.parametrize("model", [{"features": [32, 64, 64], "dense": 128},
                                   {"name": "vgg", "batchnorm": True, "head_hidden": 16}])
def test_compiler_options_keep_the_numerics(tiny_data_dir, model):
    """The programs compiled with `compiler_options` (LLVM -O1 on CPU) agree with those compiled
    with the backend's defaults (threshold.py's CNN; a VGG with BatchNorm; two vmapped seeds): the
    initial state to the last bit or two, and the metrics, parameters and evaluation after three
    train steps to 1e-4 (see below). The option only reorders float operations. Both sides
    compile as a run does, not as the rest of the suite (conftest)."""
    exp = experiment.build_experiment(config.resolve(tiny_config(tiny_data_dir, seeds=2, model=model)))
    with run_codegen() as options:
        on_cpu = jax.default_backend() == "cpu"
        assert options == ({"xla_backend_optimization_level": 1, "xla_cpu_use_fusion_emitters": True} if on_cpu else {})
        fast = _programs_run(exp)
        # The backend's default level; the block's end restores the suite's options.
        experiment.compiler_options = lambda: {k: v for k, v in options.items() if "level" not in k}
        plain = _programs_run(exp)
    assert jax.tree.structure(fast) == jax.tree.structure(plain)
    for a, b in zip(jax.tree.leaves(fast[0]), jax.tree.leaves(plain[0])):
        np.testing.assert_allclose(a, b, rtol=0, atol=2.5e-7)
    # Adam's first steps move every weight by about lr whatever the size of its gradient, so a
    # last-bit difference in a gradient near 0 (a conv bias before BatchNorm) moves it visibly.
    for a, b in zip(jax.tree.leaves(fast[1]), jax.tree.leaves(plain[1])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_compiler_options_give_way_to_quick_compiles():
    """With JAX asked to skip most optimizations (as this suite is, conftest), a run asks for none."""
    assert jax.config.read("jax_disable_most_optimizations") and experiment.compiler_options() is None


def test_one_replica_is_squeezed_not_vmapped():
    """over_replicas: a size-1 replica axis runs the unbatched function (faster on XLA:CPU), with
    the same results as jax.vmap; more replicas run vmapped."""
    seen = []

    def fn(x, y):
        seen.append(x.shape)
        return {"sum": x + y, "prod": x * y}

    x, y = jnp.arange(3.0)[None], jnp.float32(2.0)
    out = parallel.over_replicas(fn, in_axes=(0, None))(x, y)
    assert seen == [(3,)] and out["sum"].shape == (1, 3)
    ref = jax.vmap(fn, in_axes=(0, None))(x, y)
    for k in out:
        np.testing.assert_array_equal(out[k], ref[k])
    seen.clear()
    assert parallel.over_replicas(fn, in_axes=(0, None))(jnp.ones((2, 3)), y)["prod"].shape == (2, 3)
    assert seen == [(3,)]  # Traced once inside vmap, on the unbatched shape.


def test_replica_loop_runs_each_replica_unbatched():
    """over_replicas(mode="loop"): each replica runs the unbatched function inside one program
    (lax.map), shared arguments unmapped, with vmap's results; a bad mode is refused."""
    seen = []

    def fn(x, y, z):
        seen.append(x.shape)
        return {"out": x * y + z["b"]}

    x, y, z = jnp.arange(6.0).reshape(2, 3), jnp.float32(2.0), {"b": jnp.array([[1.0], [-1.0]])}
    out = jax.jit(parallel.over_replicas(fn, (0, None, 0), "loop"))(x, y, z)
    np.testing.assert_array_equal(out["out"], [[1, 3, 5], [5, 7, 9]])
    assert seen == [(3,)]
    np.testing.assert_array_equal(out["out"], jax.vmap(fn, in_axes=(0, None, 0))(x, y, z)["out"])
    with pytest.raises(ValueError, match="replica mode"):
        parallel.over_replicas(fn, (0, None, 0), "pmap")


def test_squeezed_train_call_matches_the_vmapped_one(tiny_data_dir, monkeypatch):
    """The trainer's train call on one seed: squeezed (the default) and plain vmap agree."""
    exp = experiment.build_experiment(config.resolve(tiny_config(tiny_data_dir)))
    data = epoch.device_split(exp.splits["train"])
    idx = epoch.epoch_permutation(0, 1, len(exp.splits["train"]))[:150].reshape(1, 3, 50)
    results = []
    for squeeze in (True, False):
        if not squeeze:
            monkeypatch.setattr(parallel, "over_replicas", lambda fn, in_axes, mode: jax.vmap(fn, in_axes=in_axes))
        train_fn, _ = epoch.make_epoch_fns(exp)
        results.append(train_fn(exp.init_state(), epoch.zero_sums(exp.tasks, 1), data, idx,
                                exp.dropout_rng()))
    for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(results[1])):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
