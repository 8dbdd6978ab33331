"""Augmentation on device that keeps a digit a digit: small random shifts, rotations and scalings,
elastic distortion, thicker or thinner strokes, and blur.

Per image and step (keys from the step's key, so every epoch sees fresh draws), in this order: a
random affine map (bilinear sampling, zero fill); an elastic distortion (Simard, Steinkraus and
Platt 2003, §2: a random displacement field in [−1, 1], smoothed by a Gaussian of σ
`elastic_sigma`, scaled by α `elastic`); a stroke change (the image moved a random fraction of the
way towards its 3×3 grey dilation or erosion, either with equal chance); a Gaussian blur of random
σ. With `clean` > 0, each image keeps its original with that chance (the test digits are clean).
Flips and 90° rotations are deliberately absent: they turn 6 into 9 and 2 into 5.
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
    "elastic": Option(0.0, "elastic distortion's α in pixels (Simard et al. 2003; 0: off)", minimum=0),
    "elastic_sigma": Option(4.0, "σ in pixels of the Gaussian that smooths the elastic displacement field",
                            positive=True),
    "thickness": Option(0.0, "largest fraction of the way to the 3x3 dilated or eroded image (0: off)",
                        minimum=0, below_one=True),
    "blur": Option(0.0, "largest σ in pixels of a Gaussian blur, σ ~ U(0, blur) per image (0: off)", minimum=0),
    "clean": Option(0.0, "share of images, drawn per image and step, left as they are", minimum=0, below_one=True),
}
STRENGTHS = ("shift", "rotate", "scale", "elastic", "thickness", "blur")  # 0 each: no augmentation.
BLUR_TAPS = 7  # Kernel width of the blur: ±3 pixels covers σ up to about 1.5.


def to_float(images: jnp.ndarray) -> jnp.ndarray:
    """uint8 pixels to float32 in [0, 1]; float images (already converted) pass through."""
    return images if jnp.issubdtype(images.dtype, jnp.floating) else images.astype(jnp.float32) / 255.0


def is_active(augment: Mapping[str, float]) -> bool:
    """Whether any augmentation is configured."""
    return any(augment.get(k, 0) > 0 for k in STRENGTHS)


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


def _off(value) -> bool:
    """A configured 0 (a Python number): the transform is left out of the program. A swept value
    is traced, so it stays in (and 0 is then the identity)."""
    return isinstance(value, (int, float)) and value == 0


def apply(images: jnp.ndarray, rng: jax.Array, aug: Mapping[str, float]) -> jnp.ndarray:
    """Every configured augmentation of `aug` (the config's `augment` section), in the module's order.

    With only shift, rotate and scale it is exactly `random_affine(images, rng, ...)`; the others
    draw from keys folded from `rng`."""
    original = images
    if not all(_off(aug.get(k, 0)) for k in ("shift", "rotate", "scale")):
        images = random_affine(images, rng, aug["shift"], aug["rotate"], aug["scale"])
    if not _off(aug.get("elastic", 0)):
        images = elastic(images, jax.random.fold_in(rng, 1), aug["elastic"], aug["elastic_sigma"])
    if not _off(aug.get("thickness", 0)):
        images = stroke_change(images, jax.random.fold_in(rng, 2), aug["thickness"])
    if not _off(aug.get("blur", 0)):
        images = random_blur(images, jax.random.fold_in(rng, 3), aug["blur"])
    if not _off(aug.get("clean", 0)):
        keep = jax.random.bernoulli(jax.random.fold_in(rng, 4), aug["clean"], (images.shape[0], 1, 1, 1))
        images = jnp.where(keep, original, images)
    return images


def gaussian_smooth(fields: jnp.ndarray, sigma) -> jnp.ndarray:
    """B×H×W×C smoothed along H and W by a Gaussian of σ `sigma` (zero padding), by two 1-D
    convolutions whose kernel spans ±3σ, at most the image size."""
    _, h, w, _ = fields.shape
    radius = min(h, w) // 2
    x = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    kernel = jnp.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    padded = jnp.pad(fields, ((0, 0), (radius, radius), (0, 0), (0, 0)))
    fields = sum(kernel[k] * padded[:, k:k + h] for k in range(2 * radius + 1))
    padded = jnp.pad(fields, ((0, 0), (0, 0), (radius, radius), (0, 0)))
    return sum(kernel[k] * padded[:, :, k:k + w] for k in range(2 * radius + 1))


def elastic(images: jnp.ndarray, rng: jax.Array, alpha, sigma) -> jnp.ndarray:
    """Simard et al.'s elastic distortion: output pixel p samples the input at p + α·(G_σ * U)(p),
    U uniform in [−1, 1] per pixel and axis, G_σ a Gaussian (bilinear sampling, zero fill)."""
    b, h, w, _ = images.shape
    field = alpha * gaussian_smooth(jax.random.uniform(rng, (b, h, w, 2), minval=-1.0, maxval=1.0), sigma)
    ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")

    def warp(image, shift):
        coords = [ys + shift[..., 0], xs + shift[..., 1]]
        sample = lambda channel: map_coordinates(channel, coords, order=1, mode="constant", cval=0.0)
        return jax.vmap(sample, in_axes=-1, out_axes=-1)(image)

    return jax.vmap(warp)(images, field)


def stroke_change(images: jnp.ndarray, rng: jax.Array, most) -> jnp.ndarray:
    """Each image moved a fraction λ ~ U(0, most) of the way to its 3×3 grey dilation (thicker
    strokes) or erosion (thinner), either with equal chance."""
    b = images.shape[0]
    k_amount, k_way = jax.random.split(rng)
    amount = jax.random.uniform(k_amount, (b, 1, 1, 1), maxval=most)
    thicker = jax.random.bernoulli(k_way, 0.5, (b, 1, 1, 1))
    window = lambda op, init: jax.lax.reduce_window(images, init, op, (1, 3, 3, 1), (1, 1, 1, 1), "SAME")
    target = jnp.where(thicker, window(jax.lax.max, -jnp.inf), window(jax.lax.min, jnp.inf))
    return images + amount * (target - images)


def random_blur(images: jnp.ndarray, rng: jax.Array, most) -> jnp.ndarray:
    """Each image blurred by a Gaussian of σ ~ U(0, most) (a BLUR_TAPS-wide separable kernel;
    σ near 0 is the identity)."""
    b, h, w, _ = images.shape
    sigma = jnp.maximum(jax.random.uniform(rng, (b,), maxval=most), 1e-3)
    radius = BLUR_TAPS // 2
    x = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    kernel = jnp.exp(-0.5 * (x[None, :] / sigma[:, None]) ** 2)
    kernel = (kernel / kernel.sum(axis=1, keepdims=True))[:, :, None, None, None]  # B×taps×1×1×1.
    padded = jnp.pad(images, ((0, 0), (radius, radius), (0, 0), (0, 0)))
    images = sum(kernel[:, k] * padded[:, k:k + h] for k in range(BLUR_TAPS))
    padded = jnp.pad(images, ((0, 0), (0, 0), (radius, radius), (0, 0)))
    return sum(kernel[:, k] * padded[:, :, k:k + w] for k in range(BLUR_TAPS))
