"""Training images built in the train step, on device, from their parts (`data.compose`).

With `data.compose: "step"` a two-digit training example is kept as its two digits (28×28×2,
`constructions.two_digit_parts`: the same pairs as the images built on the host) and stacked into
the 42×28 image inside the train step. The configured augmentation then warps each digit on its
own, so the overlap of the two changes from step to step, where warping the stacked image moves
both digits together. `"repair"` also pairs every top digit with the bottom digit of another
example of the same batch (a random permutation per step): fresh pairs every step, from the same
digits. Validation and test images stay the fixed pairs built on the host.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from mtljax.data import augment as augmentation
from mtljax.data import constructions

COMPOSE_MODES = ("host", "step", "repair")
COMPOSED_DATASETS = ("two_digit",)  # Datasets whose training parts can be stacked on device.
REPAIRABLE_TASKS = ("top", "bottom")  # Tasks whose labels "repair" moves with the digits.


def two_digit(batch: Mapping[str, jnp.ndarray], rng: jax.Array | None, repair: bool,
              aug: Mapping[str, Any] | None) -> dict[str, jnp.ndarray]:
    """A batch of two-digit parts (`image` B×28×28×2, uint8 or float) as a batch of float 42×28×1
    images. `rng` None: the pairs as stored, unwarped (task-gradient diagnostics). Else the
    bottom digits (and `bottom` labels) are permuted within the batch when `repair`, and each
    digit gets its own augmentation when `aug` (the `augment` section) is given."""
    parts = augmentation.to_float(batch["image"])  # As the step converts whole images: the same floats.
    out = dict(batch)
    if rng is not None:
        k_pair, k_warp = jax.random.split(rng)
        if repair:
            perm = jax.random.permutation(k_pair, parts.shape[0])
            parts = jnp.stack([parts[..., 0], parts[perm, ..., 1]], axis=-1)
            if "bottom" in out:  # A single-task baseline of `top` has no bottom labels.
                out["bottom"] = out["bottom"][perm]
        if aug is not None:
            b, h, w, _ = parts.shape
            # B×H×W×2 -> 2B×H×W×1: one map per digit.
            digits = jnp.moveaxis(parts, -1, 1).reshape(2 * b, h, w, 1)
            digits = augmentation.apply(digits, k_warp, aug)
            parts = jnp.moveaxis(digits.reshape(b, 2, h, w), 1, -1)
    out["image"] = constructions.stack_two_digits(parts, xp=jnp)
    return out


def composer(data_cfg: Mapping[str, Any]) -> Callable | None:
    """`compose(batch, rng, aug) -> batch` for `data.compose` "step"/"repair"; None for "host"
    (the training images are stored whole)."""
    mode = data_cfg.get("compose", "host")  # Only datasets built from parts own the option.
    if mode == "host":
        return None
    return lambda batch, rng, aug: two_digit(batch, rng, mode == "repair", aug)
