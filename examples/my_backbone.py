"""A new backbone in one file: one 3×3 convolution, global average pooling and a dense layer.

A backbone is a Flax linen module `(x, train) -> features`; the heads are added by the package.
Its options (config `model.*`) are its dataclass fields, declared with defaults and checks at
registration; `model: {"name": "conv_gap", "width": 16}` selects and sets them.
"""

import flax.linen as nn
import jax.numpy as jnp

from mtljax import models
from mtljax.registry import Option


@models.BACKBONES.register("conv_gap", options={
    "width": Option(16, "channels of the convolution", positive=True),
    "dense": Option(32, "width of the dense layer", positive=True),
})
class ConvGAP(nn.Module):
    """Conv 3×3 (SAME) -> ReLU -> global average pooling -> Dense -> ReLU."""

    width: int = 16
    dense: int = 32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        x = nn.relu(nn.Conv(self.width, (3, 3), padding="SAME")(x))
        x = jnp.mean(x, axis=(1, 2))
        return nn.relu(nn.Dense(self.dense)(x))
