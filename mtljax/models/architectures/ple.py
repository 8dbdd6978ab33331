"""PLE: CGC stacked in levels over the backbone's blocks."""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from mtljax.models.architectures.base import ARCHITECTURES, MultiTaskArchitecture, gate, heads_of, mix
from mtljax.registry import Option


@ARCHITECTURES.register("ple", options={
    "levels": Option(2, "extraction levels: the backbone's blocks split into this many consecutive groups",
                     positive=True),
    "shared_experts": Option(1, "shared experts per level", positive=True),
    "task_experts": Option(1, "experts of each task per level", positive=True)})
class PLE(MultiTaskArchitecture):
    """Progressive Layered Extraction (Tang, Liu, Zhao & Gong, RecSys 2020, Sec. 4.3, Eq. 5-6).

    CGC stacked in levels: the backbone's blocks are split into `levels` consecutive groups, and
    at level l every expert is a copy of group l (`level<l>_expert_shared_<e>`,
    `level<l>_expert_<task>_<e>`).
    Task t's gate (`level<l>_gate_<task>`) mixes its own and the shared experts and feeds task t's
    experts of the next level; below the top level a shared gate (`level<l>_gate_shared`) mixes
    every expert and feeds the next level's shared experts. Gates read the flattened input of
    their level. Defaults: two levels, one shared and one expert per task at each. Shared: the
    experts and shared gates below the top level (they reach every task through a shared gate),
    the task gates below the level under the top, and the top level's shared experts.
    """

    needs_blocks: ClassVar[bool] = True
    levels: int = 2
    shared_experts: int = 1
    task_experts: int = 1

    def config_problem(self) -> str | None:
        blocks = self.backbone.num_blocks
        return f"levels: at most the backbone's {blocks} blocks, got {self.levels}" if self.levels > blocks else None

    def groups(self) -> list[tuple[int, int]]:
        """(start, stop) of each level's blocks."""
        parts = np.array_split(np.arange(self.backbone.num_blocks), self.levels)
        return [(int(p[0]), int(p[-1]) + 1) for p in parts]

    def shared_params(self) -> tuple[str, ...]:
        top = self.levels - 1
        names = [f"level{top}_expert_shared_{e}" for e in range(self.shared_experts)]
        for level in range(top):
            names += [f"level{level}_expert_shared_{e}" for e in range(self.shared_experts)]
            names += [f"level{level}_expert_{t}_{e}" for t in self.heads for e in range(self.task_experts)]
            names += [f"level{level}_gate_shared"]
            # A task's gate feeds its own next-level experts, which reach every task below the top.
            names += [f"level{level}_gate_{t}" for t in self.heads] if level < top - 1 else []
        return tuple(names)

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        streams, shared_stream = {t: x for t in self.heads}, x
        for level, (start, stop) in enumerate(self.groups()):
            def expert(name, inputs, level=level, start=start, stop=stop):
                return self.backbone.clone(name=f"level{level}_{name}", parent=self)(inputs, train, start, stop)

            shared = [expert(f"expert_shared_{e}", shared_stream) for e in range(self.shared_experts)]
            own = {t: [expert(f"expert_{t}_{e}", streams[t]) for e in range(self.task_experts)] for t in self.heads}
            if level < self.levels - 1:
                every = jnp.stack([o for t in self.heads for o in own[t]] + shared)
                shared_stream = mix(gate(f"level{level}_gate_shared", every.shape[0], shared_stream), every)
            streams = {t: mix(gate(f"level{level}_gate_{t}", len(own[t]) + len(shared), streams[t]),
                              jnp.stack(own[t] + shared)) for t in self.heads}
        return heads_of(self, streams, train)
