"""Images built from a base's items (MNIST digits, Fashion-MNIST clothes, ...): coloured items,
two stacked items, MultiMNIST, and the Pareto-MTL literature's 36×36 Multi-* images.

Pure numpy functions of (greyscale images N×H×W, labels, seed): the same seed gives the same
dataset, bit for bit. Outputs are uint8 images (N×H×W×C) and a dict of raw label arrays for the
task label functions.
"""

from __future__ import annotations

import itertools

import numpy as np


def colored(images: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The coloured-MNIST project: 28×28×3, noise 0.5·U(0,1) in every channel, plus 0.5·digit added
    to the red (color 0) or green (color 1) channel, the colour drawn at random.

    Values in [0, 1] are stored as uint8 round(255·v). Items of any H×W keep their size.

    Returns:
      images N×H×W×3 uint8, and labels {"digit", "color"}.
    """
    rng = np.random.default_rng(seed)
    n, height, width = images.shape
    color = rng.integers(0, 2, n).astype(np.uint8)
    canvas = 0.5 * rng.random((n, height, width, 3), dtype=np.float32)
    digit = 0.5 * images.astype(np.float32) / 255.0
    canvas[np.arange(n), :, :, color] += digit  # channel 0 (red) or 1 (green) of each image.
    out = np.rint(canvas * 255.0).astype(np.uint8)
    return out, {"digit": labels.astype(np.uint8), "color": color}


def two_digit(images: np.ndarray, labels: np.ndarray, count: int, seed: int
              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The NumPy/PyTorch project's part 4: 42×28 images of two digits, one above the other.

    The top digit fills rows 0-27, the bottom one rows 14-41; in the 14 overlapping rows (14-27)
    the pixels are combined by max (items of height H: rows 0 to H-1 and H/2 to 3H/2-1). Pairs are
    drawn at random (with replacement) from `images`.

    Returns:
      images count×(3H/2)×W×1 uint8 (42×28 for MNIST), and labels {"top", "bottom"}.
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
    """N×H×W×2 (top, bottom) to the N×(H + H/2)×W×1 two-digit image (28 -> 42), the overlap rows
    by max. `xp`: numpy, or jax.numpy where the train step stacks pairs on device (`mtljax/data/compose.py`)."""
    top, bottom = parts[..., 0], parts[..., 1]
    zeros = xp.zeros_like(top[:, :top.shape[1] // 2])
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


def multi36(first: np.ndarray, first_labels: np.ndarray, second: np.ndarray, second_labels: np.ndarray,
            per_item: int, distinct: bool, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Multi-MNIST, Multi-Fashion and Multi-(Fashion+MNIST) of the Pareto-MTL literature (Lin et al.,
    "Pareto Multi-Task Learning", NeurIPS 2019, section 6.1; then EPO, PHN, COSMOS, LibMOON).

    Each of the first base's items appears `per_item` times (their pickles: 2, so 120,000 training
    images from MNIST's 60,000) beside an item drawn at random from the second base (the same base
    for Multi-MNIST and Multi-Fashion, and then, when `distinct`, one with another label). On a
    36×36 canvas the first item sits top-left and the second bottom-right, each shifted by up to 4
    pixels in each direction: the first's corner uniformly in (0..4, 0..4), the second's in
    (4..8, 4..8); overlapping pixels are combined by max. 28×28 items only.

    Returns:
      images (per_item·N)×36×36×1 uint8, and labels {"left" (top-left), "right" (bottom-right)}.
    """
    rng = np.random.default_rng(seed)
    index = np.repeat(np.arange(len(first)), per_item)
    other = rng.integers(0, len(second), len(index))
    while distinct and np.any(same := second_labels[other] == first_labels[index]):
        other[same] = rng.integers(0, len(second), int(same.sum()))
    shifts = rng.integers(0, 5, (len(index), 4))  # Row and column of the first item, then of the second.
    canvas = np.zeros((len(index), 36, 36), np.uint8)
    for r, c in itertools.product(range(5), repeat=2):  # One assignment per shift, not per image.
        at = np.flatnonzero((shifts[:, 0] == r) & (shifts[:, 1] == c))
        canvas[at, r:r + 28, c:c + 28] = first[index[at]]
    for r, c in itertools.product(range(4, 9), repeat=2):
        at = np.flatnonzero((shifts[:, 2] == r - 4) & (shifts[:, 3] == c - 4))
        canvas[at, r:r + 28, c:c + 28] = np.maximum(canvas[at, r:r + 28, c:c + 28], second[other[at]])
    return canvas[..., None], {"left": first_labels[index].astype(np.uint8),
                               "right": second_labels[other].astype(np.uint8)}
