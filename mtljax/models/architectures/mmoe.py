"""MMoE: experts shared by every task, mixed by each task's gate."""

from __future__ import annotations


import flax.linen as nn
import jax.numpy as jnp

from mtljax.models.architectures.base import ARCHITECTURES, MultiTaskArchitecture, gate, heads_of, mix
from mtljax.registry import Option


@ARCHITECTURES.register("mmoe", options={"experts": Option(3, "number of experts (backbone copies)", positive=True)})
class MMoE(MultiTaskArchitecture):
    """Multi-gate Mixture-of-Experts (Ma, Zhao, Yi, Chen, Hong & Chi, KDD 2018, Eq. 5-6).

    E experts, each a whole copy of the backbone (`expert_<e>`, as LibMTL's image MMoE), and one
    gate per task (`gate_<task>`): a softmax over the experts of a linear map of the flattened
    input. Task t's features are Σ_e g_t(x)_e f_e(x). The paper leaves E open; here E = 3 whole
    CNNs by default, chosen for what a 2-core CPU affords. With one expert this is hard sharing.
    Shared: the experts (each gate is its task's).
    """

    experts: int = 3

    def shared_params(self) -> tuple[str, ...]:
        return tuple(f"expert_{e}" for e in range(self.experts))

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        outs = jnp.stack([self.backbone.clone(name=f"expert_{e}", parent=self)(x, train)
                          for e in range(self.experts)])
        return heads_of(self, {t: mix(gate(f"gate_{t}", self.experts, x), outs) for t in self.heads}, train)
