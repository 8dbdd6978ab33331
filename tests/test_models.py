"""Model output shapes and exact parameter counts."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtljax import config, models

HEADS = {"digit": 10, "parity": 2, "threshold": 2}


def _init(model_cfg, shape=(2, 28, 28, 1)):
    model = models.build_model(models.default_config(**model_cfg), HEADS)
    variables = model.init(jax.random.key(0), jnp.zeros(shape), train=False)
    return model, variables


def _count(tree):
    return sum(x.size for x in jax.tree.leaves(tree))


def test_threshold_model_shapes_and_count():
    model, variables = _init({})
    out = model.apply(variables, jnp.zeros((5, 28, 28, 1)))
    assert {t: o.shape for t, o in out.items()} == {"digit": (5, 10), "parity": (5, 2), "threshold": (5, 2)}
    # conv 1->32 (288+32), 32->64 (18432+64), 64->64 (36864+64); 3x3x64=576 -> dense 128 (73728+128);
    # heads 128->10, ->2, ->2 (1290 + 258 + 258).
    assert _count(variables["params"]) == 320 + 18496 + 36928 + 73856 + 1290 + 258 + 258 == 131406


def test_gap_and_batchnorm_variants():
    _, gap = _init({"pool": "gap"})
    assert gap["params"]["backbone"]["Dense_0"]["kernel"].shape == (64, 128)
    model, bn = _init({"batchnorm": True, "dropout": 0.3})
    assert set(bn) == {"params", "batch_stats"}
    out, updated = model.apply(bn, jnp.ones((3, 28, 28, 1)), train=True, mutable=["batch_stats"],
                               rngs={"dropout": jax.random.key(1)})
    assert out["digit"].shape == (3, 10) and "batch_stats" in updated


def test_every_registered_backbone_builds_from_defaults():
    for name in models.BACKBONES:
        cfg = config.resolve({"model": {"name": name}})
        model = models.build_model(cfg["model"], HEADS)
        model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)), train=False)


def test_marlon_cnn_shape_and_count():
    model, variables = _init({"features": [32, 64], "pool_last": True, "dropout": 0.5})
    params = variables["params"]
    assert params["backbone"]["Dense_0"]["kernel"].shape == (1600, 128)
    # 320 + 18496 + 1600*128+128 + heads (1290+258+258)
    assert _count(params) == 320 + 18496 + 204928 + 1806


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_hand_written_backprop_equals_autodiff(activation):
    from mtljax.models import mlp_scratch

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(16, 1176)), jnp.float32)
    sizes = [(1176, 64), (64, 64)]
    weights = [(jnp.asarray(rng.normal(size=s) / np.sqrt(s[0]), jnp.float32), jnp.asarray(rng.normal(size=s[1]), jnp.float32))
               for s in sizes]
    dh = jnp.asarray(rng.normal(size=(16, 64)), jnp.float32)
    hand = mlp_scratch.make_hand_mlp(activation)
    plain = lambda x, w: mlp_scratch.mlp_forward(x, w, activation)  # autodiff through jnp ops
    got = jax.vjp(hand, x, weights)[1](dh)
    want = jax.vjp(plain, x, weights)[1](dh)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_mlp_scratch_model_gradient_equals_plain_mlp():
    """The whole model: hand-written backprop inside, same parameters and loss as the Flax MLP."""
    x = jnp.asarray(np.random.default_rng(1).random((8, 28, 28, 1)), jnp.float32)
    cfg = models.default_config("mlp_scratch", features=[128], activation="leaky_relu")
    hand = models.build_model({**cfg, "name": "mlp_scratch"}, {"digit": 10})
    plain = models.build_model({**cfg, "name": "mlp"}, {"digit": 10})
    params = hand.init(jax.random.key(0), x)["params"]
    plain_params = {"backbone": {"Dense_0": {"kernel": params["backbone"]["w0"], "bias": params["backbone"]["b0"]}},
                    "head_digit": params["head_digit"]}
    loss = lambda m, p: jnp.sum(m.apply({"params": p}, x)["digit"] ** 2)
    g_hand = jax.grad(lambda p: loss(hand, p))(params)
    g_plain = jax.grad(lambda p: loss(plain, p))(plain_params)
    np.testing.assert_allclose(g_hand["backbone"]["w0"], g_plain["backbone"]["Dense_0"]["kernel"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g_hand["backbone"]["b0"], g_plain["backbone"]["Dense_0"]["bias"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,model_cfg,shape,count", [
    # VGG: convs 1->32 (320), 32->64 (18496), 64->128 (73856), BN 2x(32+64+128) params; flatten 3*3*128
    # -> hidden heads 1152->128 (147584) + 128->10 (1290) and 1152->128 + 128->2 (258).
    ("vgg", {"features": [32, 64, 128], "head_hidden": 128, "batchnorm": True}, (28, 28, 1),
     320 + 18496 + 73856 + 2 * (32 + 64 + 128) + 2 * 147584 + 1290 + 258),
    ("skipcnn", {"features": [16], "dense": 32}, (28, 28, 3), 448 + 2 * 2320 + 14 * 14 * 16 * 32 + 32 + 330 + 66),
    ("mlp", {"features": [64, 64]}, (42, 28, 1), 1176 * 64 + 64 + 64 * 64 + 64 + 650 + 130),
])
def test_new_backbones(name, model_cfg, shape, count):
    heads = {"digit": 10, "parity": 2}
    model = models.build_model(models.default_config(name, **model_cfg), heads)
    variables = model.init(jax.random.key(0), jnp.zeros((1, *shape)), train=False)
    out = model.apply(variables, jnp.zeros((3, *shape)))
    assert {t: o.shape for t, o in out.items()} == {"digit": (3, 10), "parity": (3, 2)}
    assert _count(variables["params"]) == count
