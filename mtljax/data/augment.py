"""Augmentation on device that keeps a digit a digit: small random shifts, rotations and scalings.

One random affine map per image and step (keys from the step's key, so every epoch sees fresh
draws), applied by bilinear sampling with zero fill. Flips and 90° rotations are deliberately
absent: they turn 6 into 9 and 2 into 5.
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
from jax.scipy.ndimage import map_coordinates

from mtljax.registry import Option

# Config `augment.*`.
AUGMENT_OPTIONS: dict[str, Option] = {
    "shift": Option(0.0, "largest shift, in pixels, along each axis", minimum=0),
    "rotate": Option(0.0, "largest rotation, in degrees", minimum=0),
    "scale": Option(0.0, "largest relative change of size (0.1: 90 % to 110 %)", minimum=0),
}


def to_float(images: jnp.ndarray) -> jnp.ndarray:
    """uint8 pixels to float32 in [0, 1]; float images (already converted) pass through."""
    return images if jnp.issubdtype(images.dtype, jnp.floating) else images.astype(jnp.float32) / 255.0


def is_active(augment: Mapping[str, float]) -> bool:
    """Whether any augmentation is configured."""
    return any(augment[k] > 0 for k in AUGMENT_OPTIONS)


def affine_warp(images: jnp.ndarray, theta: jnp.ndarray, factor: jnp.ndarray, offset: jnp.ndarray) -> jnp.ndarray:
    """Rotates each image of B×H×W×C by theta[b] (radians; π/2 is np.rot90 with k=1), scales it by factor[b] about its centre
    and shifts it by offset[b] = (rows, columns), by bilinear sampling with zero fill.

    Output pixel p samples the input at R(-θ)·(p - c - t)/s + c (c the image centre).
    """
    _, h, w, _ = images.shape
    ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
    cy, cx = (h - 1) / 2, (w - 1) / 2

    def warp(image, theta, factor, offset):
        dy, dx = ys - cy - offset[0], xs - cx - offset[1]
        cos, sin = jnp.cos(theta), jnp.sin(theta)
        src_y = (cos * dy + sin * dx) / factor + cy
        src_x = (-sin * dy + cos * dx) / factor + cx
        sample = lambda channel: map_coordinates(channel, [src_y, src_x], order=1, mode="constant", cval=0.0)
        return jax.vmap(sample, in_axes=-1, out_axes=-1)(image)

    return jax.vmap(warp)(images, theta, factor, offset)


def random_affine(images: jnp.ndarray, rng: jax.Array, shift: float, rotate: float, scale: float) -> jnp.ndarray:
    """`affine_warp` with, per image, θ ~ U(±rotate°), s ~ U(1 ± scale), t ~ U(±shift)²."""
    b = images.shape[0]
    k_rot, k_scale, k_shift = jax.random.split(rng, 3)
    theta = jnp.deg2rad(jax.random.uniform(k_rot, (b,), minval=-rotate, maxval=rotate))
    factor = jax.random.uniform(k_scale, (b,), minval=1 - scale, maxval=1 + scale)
    offset = jax.random.uniform(k_shift, (b, 2), minval=-shift, maxval=shift)
    return affine_warp(images, theta, factor, offset)
