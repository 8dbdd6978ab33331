"""Models: a shared backbone (looked up by name) and one linear head per task.

Every model is a pure Flax linen module used through `init`/`apply` with an explicit params pytree,
so that seeds can later be vmapped. `apply` returns a dict `{task_name: logits}`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import flax.linen as nn
import jax.numpy as jnp

from mtljax import ops

BACKBONES: dict[str, type[nn.Module]] = {}

# Options every backbone accepts, with their defaults; a backbone may ignore some.
MODEL_DEFAULTS: dict[str, Any] = {
    "name": "cnn3",
    "features": [32, 64, 64],
    "dense": 128,
    "dropout": 0.0,
    "batchnorm": False,
    "pool": "flatten",  # "flatten" or "gap" (global average pooling) before the dense layer.
    "pool_last": False,  # Also max-pool after the last conv (the marlon-sb CNN of perf-notes).
    "conv_impl": "auto",  # "xla", "matmul" (ops.conv3x3_matmul) or "auto": matmul on CPU only.
}


def register_backbone(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator adding a backbone to the registry under `name`."""

    def add(cls: type[nn.Module]) -> type[nn.Module]:
        BACKBONES[name] = cls
        return cls

    return add


@register_backbone("cnn3")
class CNN3(nn.Module):
    """001's baseline trunk: three 3×3 conv layers (VALID), max-pooling after the first two,
    then a shared dense layer.

    With `features=(32, 64)`, `pool_last=True` and `dropout=0.5` it is marlon-sb's MNIST CNN
    (Conv 32 → pool → Conv 64 → pool → Flatten 1600 → Dense 128 → Dropout), perf-notes' reference.

    Attributes:
      features: channels of the three conv layers.
      dense: width of the shared dense layer.
      dropout: dropout rate after the dense layer (0 disables it).
      batchnorm: BatchNorm after every conv (before the ReLU).
      pool: "flatten" the last feature map, or "gap" (global average pooling).
      pool_last: max-pool after the last conv too.
      conv_impl: see `ops.Conv`.
    """

    features: Sequence[int] = (32, 64, 64)
    dense: int = 128
    dropout: float = 0.0
    batchnorm: bool = False
    pool: str = "flatten"
    pool_last: bool = False
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        for i, width in enumerate(self.features):
            x = ops.Conv(width, use_bias=not self.batchnorm, impl=self.conv_impl)(x)
            if self.batchnorm:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
            x = nn.relu(x)
            if i < len(self.features) - 1 or self.pool_last:
                x = ops.max_pool_2x2(x)
        x = jnp.mean(x, axis=(1, 2)) if self.pool == "gap" else x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(self.dense)(x))
        return nn.Dropout(self.dropout, deterministic=not train)(x)


class MultiTaskModel(nn.Module):
    """A backbone shared by every task, and one Dense head per task.

    Attributes:
      backbone: the backbone module.
      heads: task name -> number of outputs.
    """

    backbone: nn.Module
    heads: Mapping[str, int]

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        features = self.backbone(x, train=train)
        return {task: nn.Dense(n, name=f"head_{task}")(features) for task, n in self.heads.items()}


def build_model(model_cfg: Mapping[str, Any], heads: Mapping[str, int]) -> MultiTaskModel:
    """Builds the model named in `model_cfg` with one head per task.

    Args:
      model_cfg: the config's `model` section (see MODEL_DEFAULTS).
      heads: task name -> number of outputs, in config order.
    """
    options = {k: v for k, v in model_cfg.items() if k != "name"}
    options["features"] = tuple(options["features"])
    backbone = BACKBONES[model_cfg["name"]](**options)
    return MultiTaskModel(backbone=backbone, heads=dict(heads))
