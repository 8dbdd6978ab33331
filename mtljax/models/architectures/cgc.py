"""CGC: shared and task-specific experts, mixed by each task's gate."""

from __future__ import annotations


import flax.linen as nn
import jax.numpy as jnp

from mtljax.models.architectures.base import ARCHITECTURES, MultiTaskArchitecture, gate, heads_of, mix
from mtljax.registry import Option


@ARCHITECTURES.register("cgc", options={
    "shared_experts": Option(1, "experts shared by every task", positive=True),
    "task_experts": Option(1, "experts of each task", positive=True)})
class CGC(MultiTaskArchitecture):
    """Customized Gate Control (Tang, Liu, Zhao & Gong, RecSys 2020, Sec. 4.2, Eq. 2-4).

    Shared experts (`expert_shared_<e>`) and each task's own experts (`expert_<task>_<e>`), every
    expert a whole copy of the backbone; task t's gate (`gate_<task>`) is a softmax over its own
    and the shared experts, from the flattened input. Defaults: one shared and one expert per task,
    the smallest CGC, chosen for the cost of whole-CNN experts. Shared: the shared experts.
    """

    shared_experts: int = 1
    task_experts: int = 1

    def shared_params(self) -> tuple[str, ...]:
        return tuple(f"expert_shared_{e}" for e in range(self.shared_experts))

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        shared = [self.backbone.clone(name=f"expert_shared_{e}", parent=self)(x, train) for e in range(self.shared_experts)]
        features = {}
        for t in self.heads:
            own = [self.backbone.clone(name=f"expert_{t}_{e}", parent=self)(x, train) for e in range(self.task_experts)]
            outs = jnp.stack(own + shared)
            features[t] = mix(gate(f"gate_{t}", outs.shape[0], x), outs)
        return heads_of(self, features, train)
