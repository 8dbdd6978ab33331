"""The optax chain: Adam, AdamW or SGD-Nesterov, with weight decay masked to chosen kernels."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
import optax

from mtljax.registry import Option

# Config `optimizer.*`.
OPTIMIZER_OPTIONS: dict[str, Option] = {
    "name": Option("adam", "adam, adamw or sgd", choices=("adam", "adamw", "sgd")),
    "lr": Option(1e-3, "the base learning rate", positive=True),
    "momentum": Option(0.9, "sgd only", minimum=0),
    "nesterov": Option(True, "sgd only: Nesterov momentum"),
    "b1": Option(0.9, "adam, adamw: decay of the first-moment average (β₁)", minimum=0, below_one=True),
    "b2": Option(0.999, "adam, adamw: decay of the second-moment average (β₂)", minimum=0, below_one=True),
    "weight_decay": Option(0.0, "L2 added to the gradient; for adamw, decoupled decay", minimum=0),
    "decay_on": Option("conv", "'conv': conv kernels only; 'kernels': every kernel", choices=("conv", "kernels")),
}


def decay_mask(params: Any, decay_on: str) -> Any:
    """True for the leaves that get weight decay.

    Args:
      params: the params pytree.
      decay_on: "conv" for conv kernels only (Keras's kernel_regularizer on Conv2D layers),
        "kernels" for every Conv and Dense kernel. Biases and BatchNorm scales never decay.
    """

    def wants_decay(path: tuple, leaf: Any) -> bool:
        names = [getattr(p, "key", str(p)) for p in path]
        if names[-1] != "kernel":
            return False
        return decay_on == "kernels" or any(str(n).startswith("Conv") for n in names)

    return jax.tree_util.tree_map_with_path(wants_decay, params)


def build_optimizer(opt: Mapping[str, Any], schedule: optax.Schedule) -> optax.GradientTransformation:
    """The optimizer of the config's `optimizer` section, driven by `schedule`.

    `weight_decay` is coupled L2 (added to the gradient before Adam/SGD) for adam and sgd, and
    decoupled decay for adamw. Note Keras's `l2(λ)` adds λ·Σw² to the loss, i.e. 2λ·w to the
    gradient: it corresponds to weight_decay = 2λ here.
    """
    mask = lambda params: decay_mask(params, opt["decay_on"])
    wd = opt["weight_decay"]
    if opt["name"] == "adamw":
        return optax.adamw(schedule, b1=opt["b1"], b2=opt["b2"], weight_decay=wd, mask=mask)
    if opt["name"] == "sgd":
        base = optax.sgd(schedule, momentum=opt["momentum"] or None, nesterov=opt["nesterov"])
    else:
        base = optax.adam(schedule, b1=opt["b1"], b2=opt["b2"])
    # A traced weight decay (a sweep) always needs the transform: the structure must not depend on it.
    no_decay = isinstance(wd, (int, float)) and wd == 0
    return base if no_decay else optax.chain(optax.add_decayed_weights(wd, mask), base)


def scale_lr(tx: optax.GradientTransformation, factor: Any) -> optax.GradientTransformation:
    """`tx` with every update multiplied by `factor` (a float or a traced value): mathematically the
    learning rate times `factor` for adam, adamw and sgd, whose chains end by scaling with it."""
    return optax.chain(tx, optax.scale(factor))


def freeze(tx: optax.GradientTransformation, frozen: Sequence[str]) -> optax.GradientTransformation:
    """`tx` for every top-level parameter subtree except those named in `frozen`, which get zero
    updates (`optax.multi_transform` with `set_to_zero`): frozen weights stay bit-identical."""
    if not frozen:
        return tx

    def labels(params):
        return {name: jax.tree.map(lambda _: "frozen" if name in frozen else "train", subtree)
                for name, subtree in params.items()}

    return optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, labels)
