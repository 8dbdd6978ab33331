"""Models: a shared backbone (looked up by name) and one linear head per task.

Every model is a pure Flax linen module used through `init`/`apply` with an explicit params pytree,
so that seeds can later be vmapped. `apply` returns a dict `{task_name: logits}`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import flax.linen as nn
import jax.numpy as jnp

from mtljax.models import mlp_scratch, ops

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
    "activation": "relu",  # mlp and mlp_scratch: "relu" or "leaky_relu".
    "head_hidden": 0,  # >0: each head is Dense(head_hidden) -> ReLU -> Dropout -> output.
    "head_dropout": 0.0,
}


def register_backbone(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator adding a backbone to the registry under `name`."""

    def add(cls: type[nn.Module]) -> type[nn.Module]:
        BACKBONES[name] = cls
        return cls

    return add


def flatten_or_gap(x: jnp.ndarray, pool: str) -> jnp.ndarray:
    """N×H×W×C feature maps to N×D features: global average pooling ("gap") or flattening."""
    return jnp.mean(x, axis=(1, 2)) if pool == "gap" else x.reshape(x.shape[0], -1)


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
            pooled = i < len(self.features) - 1 or self.pool_last
            if pooled and not self.batchnorm:  # conv, ReLU and pool in one op where that is faster.
                x = ops.Conv(width, impl=self.conv_impl, relu_pool=True)(x)
                continue
            x = ops.Conv(width, use_bias=not self.batchnorm, impl=self.conv_impl)(x)
            if self.batchnorm:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
            x = nn.relu(x)
            if pooled:
                x = ops.max_pool_2x2(x)
        x = flatten_or_gap(x, self.pool)
        x = nn.relu(nn.Dense(self.dense)(x))
        return ops.Dropout(self.dropout)(x, deterministic=not train)


@register_backbone("vgg")
class VGG(nn.Module):
    """The Keras VGG project's trunk: per width, Conv 3×3 SAME → ReLU → BatchNorm → MaxPool 2;
    then Flatten → Dropout.

    Attributes:
      features: channels of the blocks (that project: 32, 64, 128).
      dropout: dropout rate after Flatten (that project: 0.4).
      batchnorm: BatchNorm in each block.
      pool: "flatten" or "gap".
      conv_impl: see `ops.Conv`.
    """

    features: Sequence[int] = (32, 64, 128)
    dropout: float = 0.0
    batchnorm: bool = True
    pool: str = "flatten"
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        for width in self.features:
            if not self.batchnorm:
                x = ops.Conv(width, padding="SAME", impl=self.conv_impl, relu_pool=True)(x)
                continue
            x = nn.relu(ops.Conv(width, padding="SAME", impl=self.conv_impl)(x))
            x = nn.BatchNorm(use_running_average=not train, momentum=0.99)(x)
            x = ops.max_pool_2x2(x)
        x = flatten_or_gap(x, self.pool)
        return ops.Dropout(self.dropout)(x, deterministic=not train)


@register_backbone("skipcnn")
class SkipCNN(nn.Module):
    """The coloured-MNIST project's trunk with ResNet-style skips: per width, x = ReLU(conv(x));
    x = ReLU(x + conv(ReLU(conv(x)))); MaxPool 2. Then Flatten (or GAP) → Dense → Dropout.

    Attributes:
      features: channels of the blocks.
      dense: width of the shared dense layer.
      dropout: dropout after the dense layer.
      batchnorm: BatchNorm after each conv (before its ReLU).
      pool: "flatten" or "gap".
      conv_impl: see `ops.Conv`.
    """

    features: Sequence[int] = (32, 64)
    dense: int = 128
    dropout: float = 0.0
    batchnorm: bool = False
    pool: str = "flatten"
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        def conv(x, width):
            x = ops.Conv(width, padding="SAME", impl=self.conv_impl, use_bias=not self.batchnorm)(x)
            return nn.BatchNorm(use_running_average=not train, momentum=0.9)(x) if self.batchnorm else x

        for width in self.features:
            x = nn.relu(conv(x, width))
            x = nn.relu(x + conv(nn.relu(conv(x, width)), width))
            x = ops.max_pool_2x2(x)
        x = flatten_or_gap(x, self.pool)
        x = nn.relu(nn.Dense(self.dense)(x))
        return ops.Dropout(self.dropout)(x, deterministic=not train)


@register_backbone("mlp")
class MLP(nn.Module):
    """Flatten, then Dense layers of widths `features` with `activation` (and dropout after each).

    Attributes:
      features: hidden widths (the NumPy/PyTorch project: [128]; its two-digit MLP: [64, 64]).
      activation: "relu" or "leaky_relu".
      dropout: dropout after each hidden layer.
    """

    features: Sequence[int] = (128,)
    activation: str = "relu"
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        x = x.reshape(x.shape[0], -1)
        act = nn.leaky_relu if self.activation == "leaky_relu" else nn.relu
        for width in self.features:
            x = ops.Dropout(self.dropout)(act(nn.Dense(width)(x)), deterministic=not train)
        return x


register_backbone("mlp_scratch")(mlp_scratch.HandMLP)


class MultiTaskModel(nn.Module):
    """A backbone shared by every task, and one head per task.

    Attributes:
      backbone: the backbone module.
      heads: task name -> number of outputs.
      head_hidden: 0 for linear heads; else each head is Dense(head_hidden) -> ReLU -> Dropout ->
        Dense(outputs) (the Keras VGG project's heads).
      head_dropout: dropout rate inside hidden heads.
    """

    backbone: nn.Module
    heads: Mapping[str, int]
    head_hidden: int = 0
    head_dropout: float = 0.0

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        features = self.backbone(x, train=train)
        if not self.is_initializing():  # Keeps `perturbations` out of init's variables.
            # A zero perturbation when a "perturbations" collection is passed: its gradient is the
            # gradient of the shared representation (MGDA-UB); otherwise a no-op.
            features = self.perturb("features", features)
        return {task: Head(n, self.head_hidden, self.head_dropout, name=f"head_{task}")(features, train)
                for task, n in self.heads.items()}


class Head(nn.Module):
    """One task's head: Dense(outputs), optionally after Dense(hidden) -> ReLU -> Dropout."""

    outputs: int
    hidden: int = 0
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        if self.hidden:
            x = nn.relu(nn.Dense(self.hidden)(x))
            x = ops.Dropout(self.dropout)(x, deterministic=not train)
        return nn.Dense(self.outputs)(x)


def model_params(params: Mapping[str, Any]) -> dict:
    """The model's parameters: a train state's `params` without the MTL strategy's own (`mtl`)."""
    return {k: v for k, v in params.items() if k != "mtl"}


def build_model(model_cfg: Mapping[str, Any], heads: Mapping[str, int]) -> MultiTaskModel:
    """Builds the model named in `model_cfg` with one head per task.

    Args:
      model_cfg: the config's `model` section (see MODEL_DEFAULTS).
      heads: task name -> number of outputs, in config order.
    """
    cls = BACKBONES[model_cfg["name"]]
    fields = {f.name for f in dataclasses.fields(cls)}
    options = {k: v for k, v in model_cfg.items() if k in fields}
    options["features"] = tuple(options["features"])
    return MultiTaskModel(backbone=cls(**options), heads=dict(heads), head_hidden=model_cfg["head_hidden"],
                          head_dropout=model_cfg["head_dropout"])
