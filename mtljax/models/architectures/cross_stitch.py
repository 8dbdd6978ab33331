"""Cross-stitch networks: one backbone per task, mixed after every block."""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax.numpy as jnp

from mtljax.models.architectures.base import ARCHITECTURES, MultiTaskArchitecture, heads_of
from mtljax.registry import Option


@ARCHITECTURES.register("cross_stitch", options={
    "same": Option(0.9, "initial weight of a task's own activations (α_S); the others share 1 − α_S",
                   minimum=0)})
class CrossStitch(MultiTaskArchitecture):
    """Cross-stitch networks (Misra, Shrivastava, Gupta & Hebert, CVPR 2016).

    One copy of the backbone per task (`tower_<task>`). After every block, each task's activations
    are replaced by a learned linear combination of all tasks' activations (Eq. 1 generalised to T
    tasks: x̃_t = Σ_s α_ts x_s), one T×T matrix per block (the paper's per-layer units; the stitch
    after the dense block plays the role of the paper's stitch after fc7). α starts at α_S on the
    diagonal and (1 − α_S)/(T − 1) elsewhere (the paper's 0.9 / 0.1 for two tasks). The paper's
    larger learning rate for α is not used: every parameter shares the configured optimizer.
    Shared: the towers and the units (every task's loss depends on every tower through α).
    """

    needs_blocks: ClassVar[bool] = True
    same: float = 0.9

    def shared_params(self) -> tuple[str, ...]:
        return (*[f"tower_{t}" for t in self.heads], "stitch")

    def stitch_init(self, key, shape):
        del key
        n, t = shape[0], shape[1]
        other = (1.0 - self.same) / (t - 1) if t > 1 else 0.0
        unit = jnp.full((t, t), other) + (self.same - other) * jnp.eye(t)
        return jnp.broadcast_to(unit, (n, t, t))

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        tasks, blocks = list(self.heads), self.backbone.num_blocks
        towers = [self.backbone.clone(name=f"tower_{t}", parent=self) for t in tasks]
        alpha = StitchUnits(blocks, len(tasks), self.stitch_init, name="stitch")()
        xs = [x] * len(tasks)
        for i in range(blocks):
            xs = [tower(h, train, i, i + 1) for tower, h in zip(towers, xs)]
            xs = list(jnp.tensordot(alpha[i], jnp.stack(xs), axes=1))
        return heads_of(self, dict(zip(tasks, xs)), train)


class StitchUnits(nn.Module):
    """The cross-stitch units: `blocks` T×T matrices (parameter `alpha`)."""

    blocks: int
    tasks: int
    init: Any

    @nn.compact
    def __call__(self) -> jnp.ndarray:
        return self.param("alpha", self.init, (self.blocks, self.tasks, self.tasks))
