"""A new multi-task architecture in one file: hard sharing plus a small residual adapter per task.

An architecture is a Flax linen module with the fields of `MultiTaskArchitecture` (the backbone,
the heads and their options) that returns `{task: outputs}`; it names the parameters every task
shares (`shared_params`), which gradient strategies aggregate and `init.params`/`train.freeze`
call "shared". Its options live under `model.<name>`: `model: {"architecture": "adapters",
"adapters": {"hidden": 8}}` selects and sets them.
"""

import flax.linen as nn
import jax.numpy as jnp

from mtljax import models
from mtljax.models.architectures import MultiTaskArchitecture, heads_of
from mtljax.registry import Option


@models.ARCHITECTURES.register("adapters", options={
    "hidden": Option(16, "width of each task's adapter", positive=True),
})
class Adapters(MultiTaskArchitecture):
    """Task t reads z + A_t(z), with z the shared backbone's features and A_t = Dense -> ReLU ->
    Dense (its last layer starts at zero, so training starts from hard sharing)."""

    hidden: int = 16

    def shared_params(self) -> tuple[str, ...]:
        return ("backbone",)

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        z = self.backbone(x, train=train)
        features = {}
        for task in self.heads:
            h = nn.relu(nn.Dense(self.hidden, name=f"adapter_{task}_in")(z))
            features[task] = z + nn.Dense(z.shape[-1], kernel_init=nn.initializers.zeros,
                                          name=f"adapter_{task}_out")(h)
        return heads_of(self, features, train)
