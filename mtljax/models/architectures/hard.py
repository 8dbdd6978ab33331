"""Hard parameter sharing (Caruana 1997): one backbone every task reads, one head per task."""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax.numpy as jnp

from mtljax.models.architectures.base import ARCHITECTURES, Head, MultiTaskArchitecture


@ARCHITECTURES.register("hard", options={})
class HardSharing(MultiTaskArchitecture):
    """Hard parameter sharing: a backbone shared by every task, and one head per task. The one
    representation every head reads makes `mtl.rep_grad` and MGDA-UB possible."""

    shared_representation: ClassVar[bool] = True

    def shared_params(self) -> tuple[str, ...]:
        """The parameters every task's loss depends on: the backbone's."""
        return ("backbone",)

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False, features: jnp.ndarray | None = None) -> dict[str, jnp.ndarray]:
        """Each task's outputs; given `features` (the representation), only the heads run on them."""
        if features is None:
            features = self.backbone(x, train=train)
        if not self.is_initializing():  # Keeps `perturbations` out of init's variables.
            # A zero perturbation when a "perturbations" collection is passed: its gradient is the
            # gradient of the shared representation (MGDA-UB); otherwise a no-op.
            features = self.perturb("features", features)
        return {task: Head(n, self.head_hidden, self.head_dropout, name=f"head_{task}")(features, train)
                for task, n in self.heads.items()}


MultiTaskModel = HardSharing  # Its name before it was one of the architectures.


def encode(model: HardSharing, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    """The shared representation of hard sharing (use as `model.apply(..., method=encode)`)."""
    return model.backbone(x, train=train)
