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


def test_apply_with_only_affine_options_is_random_affine_bit_for_bit():
    """Runs configured before the new augmentations train exactly as they did."""
    aug = {"shift": 2.0, "rotate": 10.0, "scale": 0.1, "elastic": 0.0, "elastic_sigma": 4.0, "thickness": 0.0,
           "blur": 0.0}
    key = jax.random.key(3)
    np.testing.assert_array_equal(augment.apply(IMAGES, key, aug), augment.random_affine(IMAGES, key, 2.0, 10.0, 0.1))
    assert not augment.is_active({**aug, "shift": 0.0, "rotate": 0.0, "scale": 0.0})  # elastic_sigma is no strength.


def test_gaussian_smooth_matches_scipy():
    from scipy import ndimage

    fields = np.random.default_rng(1).uniform(-1, 1, (2, 28, 28, 2)).astype(np.float32)
    got = augment.gaussian_smooth(jnp.asarray(fields), 4.0)
    expected = ndimage.gaussian_filter(fields, sigma=(0, 4.0, 4.0, 0), mode="constant", truncate=14 / 4.0)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_elastic_warps_as_scipy_samples_and_is_identity_at_zero():
    from scipy import ndimage

    key = jax.random.key(4)
    np.testing.assert_array_equal(augment.elastic(IMAGES, key, 0.0, 4.0), IMAGES)
    got = np.asarray(augment.elastic(IMAGES, key, 34.0, 4.0))
    field = 34.0 * np.asarray(augment.gaussian_smooth(jax.random.uniform(key, (4, 28, 28, 2), minval=-1.0, maxval=1.0), 4.0))
    ys, xs = np.indices((28, 28)).astype(np.float32)
    for b in range(4):
        expected = ndimage.map_coordinates(np.asarray(IMAGES)[b, ..., 0], [ys + field[b, ..., 0], xs + field[b, ..., 1]],
                                           order=1, mode="grid-constant", cval=0.0)  # JAX: zeros beyond, interpolated.
        np.testing.assert_allclose(got[b, ..., 0], expected, atol=1e-5)
    assert 0.3 < np.abs(field).max() < 5  # Simard's α 34, σ 4: displacements of a pixel or two.


def test_stroke_change_moves_towards_scipy_dilation_or_erosion():
    from scipy import ndimage

    key = jax.random.key(7)  # Two images thickened, two thinned.
    got = np.asarray(augment.stroke_change(IMAGES, key, 0.9))
    k_amount, k_way = jax.random.split(key)
    amount = np.asarray(jax.random.uniform(k_amount, (4, 1, 1, 1), maxval=0.9))
    thicker = np.asarray(jax.random.bernoulli(k_way, 0.5, (4, 1, 1, 1)))
    images = np.asarray(IMAGES)
    dilated = ndimage.grey_dilation(images, size=(1, 3, 3, 1), mode="nearest")
    eroded = ndimage.grey_erosion(images, size=(1, 3, 3, 1), mode="nearest")
    expected = images + amount * (np.where(thicker, dilated, eroded) - images)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert thicker.any() and not thicker.all() and (amount > 0).all()


def test_random_blur_matches_scipy_with_the_drawn_sigmas():
    from scipy import ndimage

    key = jax.random.key(6)
    got = np.asarray(augment.random_blur(IMAGES, key, 1.5))
    sigmas = np.asarray(jax.random.uniform(key, (4,), maxval=1.5))
    for b in range(4):
        expected = ndimage.gaussian_filter(np.asarray(IMAGES)[b, ..., 0], sigmas[b], mode="constant", truncate=3 / sigmas[b])
        np.testing.assert_allclose(got[b, ..., 0], expected, atol=1e-5)


def test_clean_share_keeps_some_images_as_they_are():
    aug = {"shift": 2.0, "rotate": 10.0, "scale": 0.1, "elastic": 34.0, "elastic_sigma": 4.0, "thickness": 0.5,
           "blur": 0.5, "clean": 0.0}
    images = jnp.asarray(np.random.default_rng(2).random((64, 28, 28, 1)), jnp.float32)
    key = jax.random.key(8)
    augmented = np.asarray(augment.apply(images, key, aug))
    mixed = np.asarray(augment.apply(images, key, {**aug, "clean": 0.5}))
    kept = np.array([np.array_equal(m, x) for m, x in zip(mixed, np.asarray(images))])
    assert all(np.array_equal(m, a) for m, a, k in zip(mixed, augmented, kept) if not k)
    assert 16 <= kept.sum() <= 48
