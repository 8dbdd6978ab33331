"""MTAN: a shared trunk with a soft attention module per task and block."""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from mtljax.models import ops
from mtljax.models.architectures.base import ARCHITECTURES, MultiTaskArchitecture, flat, heads_of


@ARCHITECTURES.register("mtan", options={})
class MTAN(MultiTaskArchitecture):
    """Multi-Task Attention Network (Liu, Johns & Davison, CVPR 2019, Sec. 3.2).

    A shared trunk (the backbone itself, `backbone`, unchanged) and per task one soft attention
    module per block (`attention_<task>_<i>`): the mask a = sigmoid(h(g(u))) ∈ [0, 1] multiplies
    the shared block's output p elementwise, â = a ⊙ p. g and h are 1×1 convolutions (Dense layers
    on vectors) with ReLU and sigmoid; the paper's BatchNorm inside them is left out, so the
    attention keeps micro-batching possible. The input u of block i > 0 concatenates p with the
    task's previous attended features passed through the shared extractor f (`extract_<i>`, the
    paper's shared 3×3 conv, here after resizing to p's resolution first: the paper pools after
    its conv; resizing first costs p's resolution, not the previous one's). Heads read â of the
    last block. Shared: the trunk and the extractors.
    """

    needs_blocks: ClassVar[bool] = True

    def shared_params(self) -> tuple[str, ...]:
        return ("backbone", *[f"extract_{i}" for i in range(1, self.backbone.num_blocks)])

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        attended: dict[str, jnp.ndarray] = {}
        for i in range(self.backbone.num_blocks):
            x = self.backbone(x, train, i, i + 1)
            extract = Extractor(name=f"extract_{i}") if i else None
            for t in self.heads:
                u = x if extract is None else jnp.concatenate([x, extract(attended[t], x.shape)], axis=-1)
                attended[t] = Attention(x.shape[-1], name=f"attention_{t}_{i}")(u) * x
        return heads_of(self, attended, train)


class Attention(nn.Module):
    """An MTAN attention mask: sigmoid(h(relu(g(u)))) with g, h 1×1 convolutions (Dense layers on
    the channel axis, named `g` and `h`), `features` channels."""

    features: int

    @nn.compact
    def __call__(self, u: jnp.ndarray) -> jnp.ndarray:
        hidden = nn.relu(nn.Dense(self.features, name="g")(u))
        return nn.sigmoid(nn.Dense(self.features, name="h")(hidden))


class Extractor(nn.Module):
    """MTAN's shared feature extractor f: the previous attended features at the shape of the
    current block's output (`shape`): resized (antialiased bilinear) then 3×3 conv + ReLU for
    feature maps, flattened then Dense + ReLU for vectors."""

    @nn.compact
    def __call__(self, prev: jnp.ndarray, shape: tuple[int, ...]) -> jnp.ndarray:
        if len(shape) == 2:
            return nn.relu(nn.Dense(shape[-1])(flat(prev)))
        if prev.ndim != 4:
            raise ValueError("MTAN: a feature map after a vector block")
        prev = jax.image.resize(prev, (prev.shape[0], *shape[1:3], prev.shape[-1]), "linear")
        return nn.relu(ops.Conv(shape[-1], padding="SAME")(prev))
