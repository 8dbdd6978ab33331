"""Models: a shared backbone (registered by name, with the options it owns) and one head per task.

Every model is a pure Flax linen module used through `init`/`apply` with an explicit params pytree,
so that seeds can be vmapped. `apply` returns a dict `{task_name: outputs}`. A backbone is a linen
module `(x, train) -> features` registered in `BACKBONES` with its options (config `model.*`: its
dataclass fields, with defaults and checks); `model.name` picks it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping, Sequence

import flax.linen as nn
import jax.numpy as jnp

from mtljax.models import mlp_scratch, ops
from mtljax.registry import Option, Registry

BACKBONES = Registry("backbone")

# Options of every model (config `model.*`); each backbone adds its own at registration.
MODEL_OPTIONS: dict[str, Option] = {
    "name": Option("cnn3", "the backbone's registered name", choices=lambda: BACKBONES.names()),
    "head_hidden": Option(0, "> 0: each head is Dense(head_hidden) -> ReLU -> Dropout -> output", minimum=0),
    "head_dropout": Option(0.0, "dropout rate inside hidden heads", minimum=0, below_one=True),
}


def _features(default):
    return Option(list(default), "widths of the layers or blocks")


def _dropout(doc="dropout rate after the last layer (0: none)"):
    return Option(0.0, doc, minimum=0, below_one=True)


POOL = Option("flatten", "'flatten' the last feature map or 'gap' (global average pooling)", choices=("flatten", "gap"))
CONV_IMPL = Option("auto", "'xla', 'matmul' (ops.conv_matmul) or 'auto' (ops.resolve_conv_impl: matmul on "
                   "CPUs, the backbone's gpu_conv_impl on GPUs)",
                   choices=("auto", "xla", "matmul"))
ACTIVATION = Option("relu", "'relu' or 'leaky_relu'", choices=("relu", "leaky_relu"))


def flatten_or_gap(x: jnp.ndarray, pool: str) -> jnp.ndarray:
    """N×H×W×C feature maps to N×D features: global average pooling ("gap") or flattening."""
    return jnp.mean(x, axis=(1, 2)) if pool == "gap" else x.reshape(x.shape[0], -1)


def dense_block(module: nn.Module, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    """The last block of cnn3 and skipcnn: flatten (or GAP) → Dense(module.dense) → ReLU → Dropout."""
    x = nn.relu(nn.Dense(module.dense, name="Dense_0")(flatten_or_gap(x, module.pool)))
    return ops.Dropout(module.dropout, name="Dropout_0")(x, deterministic=not train)


@nn.compact
def blocks_call(self, x: jnp.ndarray, train: bool, start: int = 0, stop: int | None = None) -> jnp.ndarray:
    """A block-structured backbone's `__call__`: its blocks `start` to `stop` (default: all) in order.

    Soft-sharing architectures (mtljax/models/architectures/) run the blocks one at a time;
    every submodule is named explicitly, so each block keeps its parameters whichever way it runs.
    """
    for i in range(start, self.num_blocks if stop is None else stop):
        x = self.block(i, x, train)
    return x


@BACKBONES.register("cnn3", options={
    "features": _features([32, 64, 64]), "dense": Option(128, "width of the shared dense layer", positive=True),
    "dropout": _dropout(), "batchnorm": Option(False, "BatchNorm after every conv"), "pool": POOL,
    "pool_last": Option(False, "also max-pool after the last conv"), "conv_impl": CONV_IMPL,
    "first_kernel": Option(3, "kernel size of the first conv (the others are 3×3)", choices=(3, 5, 7))})
class CNN3(nn.Module):
    """The threshold baseline's trunk: three 3×3 conv layers (VALID; the first k×k with `first_kernel`),
    max-pooling after the first two, then a shared dense layer.

    With `features=(32, 64)`, `pool_last=True` and `dropout=0.5` it is marlon-sb's MNIST CNN
    (Conv 32 → pool → Conv 64 → pool → Flatten 1600 → Dense 128 → Dropout), the reference network of benchmarks/speed.py.

    Attributes:
      features: channels of the three conv layers.
      dense: width of the shared dense layer.
      dropout: dropout rate after the dense layer (0 disables it).
      batchnorm: BatchNorm after every conv (before the ReLU).
      pool: "flatten" the last feature map, or "gap" (global average pooling).
      pool_last: max-pool after the last conv too.
      conv_impl: see `ops.Conv`.
      first_kernel: kernel size of the first conv (5: the speedrun's 5×5).
    """

    cpu_microbatch: ClassVar[int] = 32  # Micro-batches that keep im2col patches in cache (train.microbatch -1).
    features: Sequence[int] = (32, 64, 64)
    dense: int = 128
    dropout: float = 0.0
    batchnorm: bool = False
    pool: str = "flatten"
    pool_last: bool = False
    conv_impl: str = "auto"
    first_kernel: int = 3

    @property
    def num_blocks(self) -> int:
        """One block per conv layer, then the dense block."""
        return len(self.features) + 1

    def block(self, i: int, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        """Block `i`: conv i (→ BatchNorm) → ReLU (→ pool), or flatten/GAP → Dense → ReLU → Dropout."""
        if i == len(self.features):
            return dense_block(self, x, train)
        width, pooled = self.features[i], i < len(self.features) - 1 or self.pool_last
        k = self.first_kernel if i == 0 else 3
        if pooled and not self.batchnorm:  # conv, ReLU and pool in one op where that is faster.
            return ops.Conv(width, impl=self.conv_impl, relu_pool=True, kernel_size=k, name=f"Conv_{i}")(x)
        x = ops.Conv(width, use_bias=not self.batchnorm, impl=self.conv_impl, kernel_size=k, name=f"Conv_{i}")(x)
        if self.batchnorm:
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name=f"BatchNorm_{i}")(x)
        x = nn.relu(x)
        return ops.max_pool_2x2(x) if pooled else x

    __call__ = blocks_call


@BACKBONES.register("vgg", options={
    "features": _features([32, 64, 128]), "dropout": _dropout("dropout rate after Flatten"),
    "batchnorm": Option(True, "BatchNorm in each block"), "pool": POOL, "conv_impl": CONV_IMPL})
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

    cpu_microbatch: ClassVar[int] = 32
    # Examples per chunk of each training convolution (ops.conv_matmul), for BatchNorm's whole
    # batches: of chunks of 4, 8, 16 and 32, side by side at batch 128, 32 ran fastest (+16-20 %).
    conv_chunk: ClassVar[int] = 32
    gpu_conv_impl: ClassVar[str] = "xla"  # See ops.resolve_conv_impl.
    features: Sequence[int] = (32, 64, 128)
    dropout: float = 0.0
    batchnorm: bool = True
    pool: str = "flatten"
    conv_impl: str = "auto"

    @property
    def num_blocks(self) -> int:
        """One block per width, then Flatten (or GAP) → Dropout."""
        return len(self.features) + 1

    def block(self, i: int, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        """Block `i`: conv → ReLU → BatchNorm → pool, or the final flatten/GAP → Dropout."""
        if i == len(self.features):
            return ops.Dropout(self.dropout, name="Dropout_0")(flatten_or_gap(x, self.pool), deterministic=not train)
        impl = ops.resolve_conv_impl(self.conv_impl, self.gpu_conv_impl)
        conv = ops.Conv(self.features[i], padding="SAME", impl=impl, relu_pool=not self.batchnorm,
                        chunk=self.conv_chunk if train else 0, name=f"Conv_{i}")
        if not self.batchnorm:
            return conv(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.99, name=f"BatchNorm_{i}")(nn.relu(conv(x)))
        return ops.max_pool_2x2(x)

    __call__ = blocks_call


@BACKBONES.register("skipcnn", options={
    "features": _features([32, 64]), "dense": Option(128, "width of the shared dense layer", positive=True),
    "dropout": _dropout(), "batchnorm": Option(False, "BatchNorm after each conv"), "pool": POOL,
    "conv_impl": CONV_IMPL})
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

    cpu_microbatch: ClassVar[int] = 32
    # As VGG's: of chunks of 4, 8, 16 and 32, 4 ran fastest (+18 %; its 28×28×32 patches are large).
    conv_chunk: ClassVar[int] = 4
    gpu_conv_impl: ClassVar[str] = "xla"  # See ops.resolve_conv_impl.
    features: Sequence[int] = (32, 64)
    dense: int = 128
    dropout: float = 0.0
    batchnorm: bool = False
    pool: str = "flatten"
    conv_impl: str = "auto"

    @property
    def num_blocks(self) -> int:
        """One residual block per width, then the dense block."""
        return len(self.features) + 1

    def block(self, i: int, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        """Block `i`: the residual block of width i and its pool, or flatten/GAP → Dense → ReLU → Dropout."""
        if i == len(self.features):
            return dense_block(self, x, train)

        def conv(x, k):  # The block's k-th conv (named as the single-call trunk numbered them).
            n = 3 * i + k
            impl = ops.resolve_conv_impl(self.conv_impl, self.gpu_conv_impl)
            x = ops.Conv(self.features[i], padding="SAME", impl=impl, use_bias=not self.batchnorm,
                         chunk=self.conv_chunk if train else 0, name=f"Conv_{n}")(x)
            return nn.BatchNorm(use_running_average=not train, momentum=0.9, name=f"BatchNorm_{n}")(x) \
                if self.batchnorm else x

        x = nn.relu(conv(x, 0))
        x = nn.relu(x + conv(nn.relu(conv(x, 1)), 2))
        return ops.max_pool_2x2(x)

    __call__ = blocks_call


@BACKBONES.register("lenet", options={
    "features": _features([10, 20]), "kernels": Option([5, 5], "kernel size of each conv"),
    "dense": Option(50, "width of the shared dense layer", positive=True), "conv_impl": CONV_IMPL})
class LeNet(nn.Module):
    """The Pareto-MTL literature's Multi-LeNet trunk: k×k VALID convs (→ ReLU → 2×2 max-pool) of
    `features` channels, flatten, Dense(`dense`) → ReLU; a linear head per task. The defaults are
    LibMOON's (two 5×5 convs of 10 and 20 channels, dense 50: 36×36 → 6×6×20); ParetoMTL, PHN and
    COSMOS use a 9×9 first conv (`kernels=[9, 5]`: 36×36 → 5×5×20).

    Attributes:
      features: channels of the convs.
      kernels: kernel size of each conv.
      dense: width of the shared dense layer.
      conv_impl: see `ops.Conv`.
    """

    features: Sequence[int] = (10, 20)
    kernels: Sequence[int] = (5, 5)
    dense: int = 50
    conv_impl: str = "auto"

    @property
    def num_blocks(self) -> int:
        """One block per conv, then the dense block."""
        return len(self.features) + 1

    def block(self, i: int, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        """Block `i`: conv i → ReLU → pool, or flatten → Dense → ReLU."""
        if i == len(self.features):
            return nn.relu(nn.Dense(self.dense, name="Dense_0")(x.reshape(x.shape[0], -1)))
        return ops.Conv(self.features[i], impl=self.conv_impl, relu_pool=True, kernel_size=self.kernels[i],
                        name=f"Conv_{i}")(x)

    __call__ = blocks_call


@BACKBONES.register("mlp", options={"features": _features([128]), "activation": ACTIVATION,
                                    "dropout": _dropout("dropout after each hidden layer")})
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

    @property
    def num_blocks(self) -> int:
        """One block per hidden layer."""
        return len(self.features)

    def block(self, i: int, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        """Hidden layer `i` (the first one flattens its input)."""
        act = nn.leaky_relu if self.activation == "leaky_relu" else nn.relu
        x = act(nn.Dense(self.features[i], name=f"Dense_{i}")(x.reshape(x.shape[0], -1)))
        return ops.Dropout(self.dropout, name=f"Dropout_{i}")(x, deterministic=not train)

    __call__ = blocks_call


BACKBONES.register("mlp_scratch", mlp_scratch.HandMLP, options={
    "features": _features([128]), "activation": Option("leaky_relu", "'relu' or 'leaky_relu'",
                                                       choices=("relu", "leaky_relu"))})


def model_params(params: Mapping[str, Any]) -> dict:
    """The model's parameters: a train state's `params` without the MTL strategy's own (`mtl`)."""
    return {k: v for k, v in params.items() if k != "mtl"}


def default_config(name: str = "cnn3", **overrides: Any) -> dict[str, Any]:
    """A `model` config section: backbone `name` with its default options, then `overrides`."""
    options = {**MODEL_OPTIONS, **BACKBONES.options(name)}
    return {**{k: o.default for k, o in options.items()}, "name": name, **overrides}


def build_backbone(model_cfg: Mapping[str, Any]) -> nn.Module:
    """The backbone named in `model_cfg` (the config's `model` section), with its own options."""
    cls = BACKBONES[model_cfg["name"]]
    fields = {f.name for f in dataclasses.fields(cls)}
    options = {k: v for k, v in model_cfg.items() if k in fields}
    for key in ("features", "kernels"):
        if key in options:
            options[key] = tuple(options[key])
    return cls(**options)


def input_problem(model: nn.Module, image_shape: Sequence[int]) -> str | None:
    """Why `model` cannot take images of `image_shape` (H×W×C), or None: traced, not run, so a
    size too small for its pooling shows here, not deep inside a run."""
    import jax

    try:
        jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, *image_shape))))
    except Exception as exc:  # noqa: BLE001 - a shape error deep in a layer: say what does not fit.
        return f"cannot take {'×'.join(map(str, image_shape))} images ({type(exc).__name__})"
    return None
