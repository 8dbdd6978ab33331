"""Multi-task architectures by name (config `model.architecture`): what every architecture has.

Each architecture is a pure Flax module built around the configured backbone (mtljax/models/
backbones.py) with one head per task; `apply` returns `{task: outputs}` as hard sharing does.
Options live under `model.<architecture>` (e.g. `model.mmoe.experts`). Every architecture names
its shared parameters (`shared_params`): the top-level parameter subtrees that more than one
task's loss depends on; gradient aggregators combine the task gradients of those, and every other
subtree gets its own task's gradient. Cross-stitch, MTAN and PLE run the backbone block by block
(backbones with `num_blocks` and `block`); the expert models use whole backbone copies.
One module per architecture in this package; hard sharing (`hard.py`) is one of them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mtljax.models import ops
from mtljax.models.backbones import build_backbone
from mtljax.models.preference import MODES as PREFERENCE_MODES, PreferenceModel
from mtljax.registry import Option, Registry

ARCHITECTURES = Registry("architecture")
# Config `model.architecture`; the selected architecture's own options live under `model.<name>`.
ARCHITECTURE_OPTIONS: dict[str, Option] = {
    "architecture": Option("hard", "how the tasks share parameters: 'hard' (one backbone) or a soft-sharing "
                           "architecture's registered name", choices=lambda: ARCHITECTURES.names()),
}


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



def heads_of(module: nn.Module, features: Mapping[str, jnp.ndarray], train: bool) -> dict[str, jnp.ndarray]:
    """Each task's head (`head_<task>`, as hard sharing names them) on that task's features."""
    return {t: Head(n, module.head_hidden, module.head_dropout, name=f"head_{t}")(features[t], train)
            for t, n in module.heads.items()}


def has_blocks(backbone: nn.Module) -> bool:
    """Whether a backbone runs block by block (`num_blocks` and `block(i, x, train)`)."""
    return hasattr(backbone, "num_blocks") and hasattr(backbone, "block")


def mix(weights: jnp.ndarray, experts: jnp.ndarray) -> jnp.ndarray:
    """Σ_e weights[b, e] · experts[e, b, ...]: a gated mixture of expert outputs (E×B×...)."""
    return jnp.einsum("be,eb...->b...", weights, experts)


def flat(x: jnp.ndarray) -> jnp.ndarray:
    return x.reshape(x.shape[0], -1)


class MultiTaskArchitecture(nn.Module):
    """Fields every architecture has, hard sharing included.

    Attributes:
      backbone: the configured backbone, copied or run block by block.
      heads: task name -> number of outputs, in config order.
      head_hidden: 0 for linear heads; else each head is Dense(head_hidden) -> ReLU -> Dropout ->
        Dense(outputs) (the Keras VGG project's heads).
      head_dropout: dropout rate inside hidden heads.
    """

    needs_blocks: ClassVar[bool] = False  # Runs the backbone block by block.
    shared_representation: ClassVar[bool] = False  # One representation feeds every head (rep_grad, MGDA-UB).
    backbone: nn.Module
    heads: Mapping[str, int]
    head_hidden: int = 0
    head_dropout: float = 0.0

    def shared_params(self) -> tuple[str, ...]:
        """The top-level parameter subtrees that more than one task's loss depends on."""
        raise NotImplementedError

    def config_problem(self) -> str | None:
        """What is wrong with this combination of options and backbone ("<option>: <why>"), if anything."""
        return None


class Gate(nn.Module):
    """A softmax gate over `experts` from the flattened input (MMoE Eq. 6: g(x) = softmax(W x))."""

    experts: int

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return nn.softmax(nn.Dense(self.experts)(flat(x)))


def gate(name: str, experts: int, x: jnp.ndarray) -> jnp.ndarray:
    """The weights of gate `name` (a `Gate` submodule of the calling module) over `experts` for `x`."""
    return Gate(experts, name=name)(x)


def expand_shared(model: nn.Module, names: Sequence[str]) -> list[str]:
    """Parameter subtree names with "shared" replaced by the architecture's shared subtrees."""
    out: list[str] = []
    for name in names:
        out += [n for n in (model.shared_params() if name == "shared" else [name]) if n not in out]
    return out


def param_count(model: nn.Module, image_shape: Sequence[int]) -> int:
    """The number of the model's parameters (one replica), from its abstract init (nothing computed)."""
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, *image_shape))))
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(variables["params"]))


def build_model(model_cfg: Mapping[str, Any], heads: Mapping[str, int], condition: str = "none",
                hidden: int = 100) -> nn.Module:
    """Builds the architecture named in `model_cfg` (default hard sharing) around its backbone,
    with one head per task.

    Args:
      model_cfg: the config's `model` section (MODEL_OPTIONS, the backbone's own options, and the
        architecture's under `model.<architecture>`).
      heads: task name -> number of outputs, in config order.
      condition: "hyper" or "simplex": the architecture's weights made from the preference ray
        (mtljax/models/preference.py, config `pareto.condition`); otherwise the architecture itself.
      hidden: the hypernetwork's width ("hyper").
    """
    name = model_cfg.get("architecture", "hard")
    model = ARCHITECTURES[name](backbone=build_backbone(model_cfg), heads=dict(heads),
                                head_hidden=model_cfg["head_hidden"], head_dropout=model_cfg["head_dropout"],
                                **dict(model_cfg.get(name, {})))
    return PreferenceModel(model, condition, len(heads), hidden) if condition in PREFERENCE_MODES else model
