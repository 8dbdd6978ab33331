"""Images built from MNIST digits: coloured digits, two stacked digits, MultiMNIST.

Pure numpy functions of (images, labels, seed): the same seed gives the same dataset, bit for bit.
Outputs are uint8 images (N×H×W×C) and a dict of raw label arrays for the task label functions.
"""

from __future__ import annotations

import numpy as np


def colored(images: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The coloured-MNIST project: 28×28×3, noise 0.5·U(0,1) in every channel, plus 0.5·digit added
    to the red (color 0) or green (color 1) channel, the colour drawn at random.

    Values in [0, 1] are stored as uint8 round(255·v).

    Returns:
      images N×28×28×3 uint8, and labels {"digit", "color"}.
    """
    rng = np.random.default_rng(seed)
    n = len(images)
    color = rng.integers(0, 2, n).astype(np.uint8)
    canvas = 0.5 * rng.random((n, 28, 28, 3), dtype=np.float32)
    digit = 0.5 * images.astype(np.float32) / 255.0
    canvas[np.arange(n), :, :, color] += digit  # channel 0 (red) or 1 (green) of each image.
    out = np.rint(canvas * 255.0).astype(np.uint8)
    return out, {"digit": labels.astype(np.uint8), "color": color}


def two_digit(images: np.ndarray, labels: np.ndarray, count: int, seed: int
              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The NumPy/PyTorch project's part 4: 42×28 images of two digits, one above the other.

    The top digit fills rows 0-27, the bottom one rows 14-41; in the 14 overlapping rows (14-27)
    the pixels are combined by max. Pairs are drawn at random (with replacement) from `images`.

    Returns:
      images count×42×28×1 uint8, and labels {"top", "bottom"}.
    """
    parts, pair_labels = two_digit_parts(images, labels, count, seed)
    return stack_two_digits(parts), pair_labels


def two_digit_parts(images: np.ndarray, labels: np.ndarray, count: int, seed: int
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The pairs of `two_digit` (same seed, same pairs) before they are stacked: count×28×28×2
    uint8, channel 0 the top digit and channel 1 the bottom one; labels {"top", "bottom"}."""
    rng = np.random.default_rng(seed)
    top, bottom = rng.integers(0, len(images), count), rng.integers(0, len(images), count)
    parts = np.stack([images[top], images[bottom]], axis=-1)
    return parts, {"top": labels[top].astype(np.uint8), "bottom": labels[bottom].astype(np.uint8)}


def stack_two_digits(parts, xp=np):
    """N×28×28×2 (top, bottom) to the N×42×28×1 two-digit image, the overlap rows by max. `xp`:
    numpy, or jax.numpy where the train step stacks pairs on device (`mtljax/data/compose.py`)."""
    top, bottom = parts[..., 0], parts[..., 1]
    zeros = xp.zeros_like(top[:, :14])
    return xp.maximum(xp.concatenate([top, zeros], axis=1), xp.concatenate([zeros, bottom], axis=1))[..., None]


# Nearest-neighbour 36 -> 28 as PIL's NEAREST (used by scipy.misc.imresize in the original loader):
# output pixel i samples source floor((i + 0.5) · 36 / 28).
_NEAREST_36_TO_28 = np.floor((np.arange(28) + 0.5) * 36 / 28).astype(np.int64)


def multimnist(images: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """MultiMNIST as built by Sener & Koltun (2018)'s loader, after Sabour et al. (2017).

    For every image (the "left" digit) one other image is drawn at random (the "right" digit).
    On a 36×36 canvas the left digit fills [0:28, 0:28] (up-left) and the right one [6:34, 6:34]
    (down-right); where they overlap, [6:28, 6:28], pixels are combined by max. The canvas is
    resized to 28×28 by nearest neighbour.

    Returns:
      images N×28×28×1 uint8, and labels {"left", "right"}.
    """
    rng = np.random.default_rng(seed)
    n = len(images)
    right = rng.integers(0, n, n)
    canvas = np.zeros((n, 36, 36), np.uint8)
    canvas[:, 0:28, 0:28] = images
    canvas[:, 6:34, 6:34] = np.maximum(canvas[:, 6:34, 6:34], images[right])
    out = canvas[:, _NEAREST_36_TO_28][:, :, _NEAREST_36_TO_28]
    return out[..., None], {"left": labels.astype(np.uint8), "right": labels[right].astype(np.uint8)}
