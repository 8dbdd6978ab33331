"""Soft parameter sharing, checked against each paper's definitions and independent NumPy code."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtljax import models
from mtljax.models import architectures as arch

HEADS = {"a": 2, "b": 10, "c": 3}
X = jax.random.uniform(jax.random.key(1), (5, 28, 28, 1))
SMALL = {"cnn3": {"features": [4, 8, 8], "dense": 16}, "mlp": {"features": [16, 8]},
         "vgg": {"features": [4, 8], "dropout": 0.2}, "skipcnn": {"features": [4, 8], "dense": 16}}


def build(architecture="hard", name="cnn3", heads=HEADS, **options):
    cfg = models.default_config(name, **SMALL.get(name, {}), architecture=architecture)
    return models.build_model({**cfg, architecture: options}, heads)


def init(model, key=0):
    return model.init(jax.random.key(key), X)


def apply(model, variables, x=X):
    return model.apply(variables, x, train=False)


@pytest.mark.parametrize("name", ["cnn3", "mlp", "vgg", "skipcnn"])
def test_running_the_blocks_one_by_one_is_the_backbone(name):
    backbone = models.build_backbone(models.default_config(name, **SMALL[name]))
    variables = backbone.init(jax.random.key(0), X, False)
    whole = backbone.apply(variables, X, False)
    x = X
    for i in range(backbone.num_blocks):
        x = backbone.apply(variables, x, False, i, i + 1)
    np.testing.assert_array_equal(x, whole)


def test_cross_stitch_with_identity_units_is_independent_networks():
    model = build("cross_stitch")
    variables = init(model)
    params = dict(variables["params"])
    params["stitch"] = {"alpha": jnp.broadcast_to(jnp.eye(3), params["stitch"]["alpha"].shape)}
    outputs = apply(model, {"params": params})
    for task, n in HEADS.items():  # Task t's tower and head alone: a single-task hard-sharing network.
        alone = build("hard", heads={task: n})
        own = {"backbone": params[f"tower_{task}"], f"head_{task}": params[f"head_{task}"]}
        np.testing.assert_allclose(apply(alone, {"params": own})[task], outputs[task], rtol=1e-6, atol=1e-6)


def test_cross_stitch_units_start_near_the_identity_with_rows_summing_to_one():
    alpha = np.asarray(init(build("cross_stitch", same=0.9))["params"]["stitch"]["alpha"])
    assert alpha.shape == (4, 3, 3)  # One T×T unit after each of cnn3's four blocks.
    np.testing.assert_allclose(alpha[:, np.arange(3), np.arange(3)], 0.9)
    np.testing.assert_allclose(alpha.sum(-1), 1.0, rtol=1e-6)


def test_mmoe_with_one_expert_is_hard_sharing():
    mmoe = build("mmoe", experts=1)
    variables = init(mmoe)
    hard = build("hard")
    params = {"backbone": variables["params"]["expert_0"], **{f"head_{t}": variables["params"][f"head_{t}"]
                                                              for t in HEADS}}
    expected = apply(hard, {"params": params})
    for task, out in apply(mmoe, variables).items():
        np.testing.assert_allclose(out, expected[task], rtol=1e-6, atol=1e-6)


def test_mtan_trunk_is_the_plain_backbone_and_masks_of_one_are_hard_sharing():
    mtan, hard = build("mtan"), build("hard")
    variables = init(mtan)
    # Same path, same key: the shared trunk is initialised exactly as hard sharing's backbone.
    for a, b in zip(jax.tree.leaves(variables["params"]["backbone"]), jax.tree.leaves(init(hard)["params"]["backbone"])):
        np.testing.assert_array_equal(a, b)
    params = dict(variables["params"])
    for name in [n for n in params if n.startswith("attention_")]:  # sigmoid(100) == 1 in float32.
        last = params[name]["h"]
        params[name] = {**params[name], "h": {"kernel": jnp.zeros_like(last["kernel"]),
                                                    "bias": jnp.full_like(last["bias"], 100.0)}}
    expected = apply(hard, {"params": {k: v for k, v in params.items() if k == "backbone" or k.startswith("head_")}})
    for task, out in apply(mtan, {"params": params}).items():
        np.testing.assert_array_equal(out, expected[task])


@pytest.mark.parametrize("seed", range(3))
def test_mtan_masks_lie_in_the_unit_interval(seed):
    attention = arch.Attention(8)
    u = 50 * jax.random.normal(jax.random.key(seed), (4, 6, 6, 16))
    mask = attention.apply(attention.init(jax.random.key(seed), u), u)
    assert mask.shape == (4, 6, 6, 8) and float(mask.min()) >= 0 and float(mask.max()) <= 1


@pytest.mark.parametrize("architecture", ["mmoe", "cgc", "ple", "dselect_k"])
def test_gates_are_distributions(architecture):
    model = build(architecture)
    is_gate = lambda module, _: isinstance(module, (arch.Gate, arch.DSelectGate))
    _, state = model.apply(init(model), X, capture_intermediates=is_gate, mutable=["intermediates"])
    gates = jax.tree.leaves(state["intermediates"])
    assert len(gates) >= len(HEADS)
    for g in map(np.asarray, gates):
        assert (g >= 0).all() and np.allclose(g.sum(-1), 1.0, rtol=1e-6)


def test_gate_is_a_softmax_over_experts_of_the_flat_input():
    gate = arch.Gate(5)
    variables = gate.init(jax.random.key(0), X)
    w = variables["params"]["Dense_0"]
    logits = np.asarray(X).reshape(5, -1) @ np.asarray(w["kernel"]) + np.asarray(w["bias"])
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(gate.apply(variables, X), expected / expected.sum(1, keepdims=True), rtol=1e-5, atol=1e-6)


def _smooth_step_numpy(t, gamma):
    t = np.asarray(t, np.float64)
    out = np.where(t <= -gamma / 2, 0.0, np.where(t >= gamma / 2, 1.0, -2 * t**3 / gamma**3 + 3 * t / (2 * gamma) + 0.5))
    return out


@pytest.mark.parametrize("gamma", [0.5, 1.0, 3.0])
def test_smooth_step_matches_its_definition_and_is_continuous(gamma):
    t = np.linspace(-2 * gamma, 2 * gamma, 1001)
    np.testing.assert_allclose(arch.smooth_step(jnp.asarray(t, jnp.float32), gamma), _smooth_step_numpy(t, gamma),
                               atol=1e-6)
    edges = np.array([-gamma / 2, gamma / 2])
    np.testing.assert_allclose(_smooth_step_numpy(edges + 1e-9, gamma), [0, 1], atol=1e-6)  # C0 at the edges,
    slope = jax.vmap(jax.grad(lambda s: arch.smooth_step(s, gamma)))(jnp.asarray(edges * 0.999999, jnp.float32))
    np.testing.assert_allclose(slope, 0.0, atol=1e-4)  # and C1: flat where it saturates.


def _selector_numpy(z, gamma):
    s = _smooth_step_numpy(z, gamma)
    m = z.shape[-1]
    out = np.ones(z.shape[:-1] + (2**m,))
    for e in range(2**m):
        for j in range(m):
            out[..., e] *= s[..., j] if (e >> j) & 1 else 1 - s[..., j]
    return out


def test_dselect_selectors_match_numpy_and_are_distributions():
    z = np.random.default_rng(0).normal(size=(6, 2, 3))
    r = np.asarray(arch.selector(jnp.asarray(z, jnp.float32), 1.0))
    np.testing.assert_allclose(r, _selector_numpy(z, 1.0), atol=1e-6)
    np.testing.assert_allclose(r.sum(-1), 1.0, atol=1e-6)
    w = np.random.default_rng(1).normal(size=(6, 2))
    q = np.asarray(arch.dselect_weights(jnp.asarray(z, jnp.float32), jnp.asarray(w, jnp.float32), 1.0))
    soft = np.exp(w) / np.exp(w).sum(1, keepdims=True)
    np.testing.assert_allclose(q, np.einsum("bk,bke->be", soft, _selector_numpy(z, 1.0)), atol=1e-6)


@pytest.mark.parametrize("k,experts", [(1, 4), (2, 4), (3, 8), (4, 16)])
def test_dselect_k_reaches_exactly_k_experts_once_its_selectors_saturate(k, experts):
    m = int(np.log2(experts))
    chosen = np.random.default_rng(k).choice(experts, size=k, replace=False)
    bits = (chosen[:, None] >> np.arange(m)[None, :]) & 1
    z = jnp.asarray(np.where(bits == 1, 1.0, -1.0)[None] * 0.5, jnp.float32)  # |z| = γ/2: the end of the step.
    q = np.asarray(arch.dselect_weights(z, jnp.zeros((1, k)), 1.0))[0]
    assert np.count_nonzero(q) == k and set(np.flatnonzero(q)) == set(chosen)
    np.testing.assert_allclose(q[chosen], 1.0 / k, rtol=1e-6)
    # Inside the step the gate is dense: every expert has some weight.
    assert np.count_nonzero(np.asarray(arch.dselect_weights(z * 0.5, jnp.zeros((1, k)), 1.0))) == experts


ARCHITECTURES = list(models.ARCHITECTURES.names())


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_shared_params_are_exactly_those_several_tasks_depend_on(architecture):
    model = build(architecture)
    variables = init(model, key=3)

    # Learning to Branch's search mixes every parent while training (evaluating, it takes the likeliest).
    mode = {"train": True, "rngs": {"dropout": jax.random.key(1)}} if architecture == "branch" else {"train": False}

    def loss(params, task):
        return jnp.sum(model.apply({"params": params}, X, **mode)[task] ** 2)

    depends = {name: 0 for name in variables["params"]}
    for task in HEADS:
        grads = jax.grad(loss)(variables["params"], task)
        for name, sub in grads.items():
            depends[name] += any(bool(jnp.any(g != 0)) for g in jax.tree.leaves(sub))
    assert set(model.shared_params()) == {name for name, n in depends.items() if n > 1}
    assert all(n >= 1 for n in depends.values())  # Every parameter serves some task.


def test_a_branching_tree_shares_the_nodes_above_its_branches():
    # cnn3's four blocks: one trunk node, two nodes at the third level, then a to one, b and c to the other.
    model = build("branch", tree=[[0], [0], [0, 0], [0, 1], [0, 1, 1]])
    variables = init(model, key=3)
    outputs = apply(model, variables)
    assert set(outputs) == set(HEADS)
    assert set(model.shared_params()) == {"node_0_0", "node_1_0", "node_2_1", "node_3_1"}
    assert set(variables["params"]) == {"node_0_0", "node_1_0", "node_2_0", "node_2_1", "node_3_0", "node_3_1",
                                        "head_a", "head_b", "head_c"}


@pytest.mark.parametrize("architecture,name", list(itertools.product(ARCHITECTURES, ["cnn3", "mlp"])))
def test_every_architecture_builds_on_block_backbones(architecture, name):
    if architecture == "ple" and name == "mlp":
        name = "vgg"
    model = build(architecture, name)
    outputs = apply(model, init(model))
    assert {t: o.shape for t, o in outputs.items()} == {t: (5, n) for t, n in HEADS.items()}
    assert set(model.shared_params()) & set(init(model)["params"])


def test_expand_shared_names_the_architectures_shared_subtrees():
    model = build("cgc")
    assert models.expand_shared(model, ["shared", "head_a", "expert_shared_0"]) == ["expert_shared_0", "head_a"]
    assert models.expand_shared(build("hard"), ["shared"]) == ["backbone"]


def test_the_chosen_tree_takes_the_likeliest_parents_and_drops_unreached_nodes():
    model = build("branch", width=3)
    params = jax.tree.map(np.asarray, init(model)["params"])
    logits = np.zeros((4, 3, 3), np.float32)  # Levels 2-4 over their parents, then the tasks over level 4.
    logits[0, :, 1] = 1.0        # Level 2: every node reads level-1 node 1.
    logits[1, :, 2] = 1.0        # Level 3: every node reads level-2 node 2.
    logits[2, 0, 0] = logits[2, 1, 0] = logits[2, 2, 2] = 1.0  # Level 4: nodes 0, 1 read 0; node 2 reads 2.
    logits[3, 0, 2] = logits[3, 1, 0] = logits[3, 2, 0] = 1.0  # Task a reads node 2, b and c node 0.
    params["branch"]["logits"] = logits
    # Reached: level 1 node 1, level 2 node 2, level 3 nodes 0 and 2, level 4 nodes 0 and 2.
    assert model.chosen_tree(params) == [[0], [0], [0, 0], [0, 1], [1, 0, 0]]
