"""Augmentation: identity at zero, exact integer shifts, fresh draws per key, digits kept upright."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from mtljax.data import augment

IMAGES = jnp.asarray(np.random.default_rng(0).random((4, 28, 28, 1)), jnp.float32)


def test_zero_augmentation_is_identity():
    out = augment.random_affine(IMAGES, jax.random.key(0), shift=0.0, rotate=0.0, scale=0.0)
    np.testing.assert_allclose(out, IMAGES, atol=1e-6)


def test_integer_shift_and_quarter_turn_are_exact():
    ones = jnp.ones(4)
    shifted = augment.affine_warp(IMAGES, jnp.zeros(4), ones, jnp.tile(jnp.asarray([[2.0, -3.0]]), (4, 1)))
    expected = np.zeros_like(np.asarray(IMAGES))
    expected[:, 2:, :-3] = np.asarray(IMAGES)[:, :-2, 3:]
    np.testing.assert_allclose(shifted, expected, atol=1e-5)
    turned = augment.affine_warp(IMAGES, jnp.full(4, np.pi / 2), ones, jnp.zeros((4, 2)))
    np.testing.assert_allclose(turned, np.rot90(np.asarray(IMAGES), k=1, axes=(1, 2)), atol=1e-4)


def test_draws_differ_by_key_and_stay_in_range():
    a = augment.random_affine(IMAGES, jax.random.key(1), 2.0, 10.0, 0.1)
    b = augment.random_affine(IMAGES, jax.random.key(2), 2.0, 10.0, 0.1)
    c = augment.random_affine(IMAGES, jax.random.key(1), 2.0, 10.0, 0.1)
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert a.shape == IMAGES.shape
