"""Model output shapes and exact parameter counts."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from mtljax import config, models

HEADS = {"digit": 10, "parity": 2, "threshold": 2}


def _init(model_cfg, shape=(2, 28, 28, 1)):
    model = models.build_model({**models.MODEL_DEFAULTS, **model_cfg}, HEADS)
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
