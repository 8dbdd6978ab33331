"""Multi-task architectures by name (config `model.architecture`): how the tasks share parameters.

Each architecture is a pure Flax module built around the configured backbone (mtljax/models/
backbones.py) with one head per task; `apply` returns `{task: outputs}` as hard sharing does.
Options live under `model.<architecture>` (e.g. `model.mmoe.experts`). Every architecture names
its shared parameters (`shared_params`): the top-level parameter subtrees that more than one
task's loss depends on; gradient aggregators combine the task gradients of those, and every other
subtree gets its own task's gradient. Cross-stitch, MTAN and PLE run the backbone block by block
(backbones with `num_blocks` and `block`); the expert models use whole backbone copies.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mtljax.models import ops
from mtljax.models.backbones import Head, MultiTaskModel, build_backbone
from mtljax.registry import Option, Registry

ARCHITECTURES = Registry("architecture")
# Config `model.architecture`; the selected architecture's own options live under `model.<name>`.
ARCHITECTURE_OPTIONS: dict[str, Option] = {
    "architecture": Option("hard", "how the tasks share parameters: 'hard' (one backbone) or a soft-sharing "
                           "architecture's registered name", choices=lambda: ARCHITECTURES.names()),
}


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
    """Fields every architecture has (hard sharing, `MultiTaskModel`, has the same ones).

    Attributes:
      backbone: the configured backbone, copied or run block by block.
      heads: task name -> number of outputs, in config order.
      head_hidden, head_dropout: as `MultiTaskModel`'s.
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


ARCHITECTURES.register("hard", MultiTaskModel, options={})  # It declares what the others declare.


@ARCHITECTURES.register("cross_stitch", options={
    "same": Option(0.9, "initial weight of a task's own activations (α_S); the others share 1 − α_S",
                   minimum=0)})
class CrossStitch(MultiTaskArchitecture):
    """Cross-stitch networks (Misra, Shrivastava, Gupta & Hebert, CVPR 2016).

    One copy of the backbone per task (`tower_<task>`). After every block, each task's activations
    are replaced by a learned linear combination of all tasks' activations (Eq. 1 generalised to T
    tasks: x̃_t = Σ_s α_ts x_s), one T×T matrix per block (the paper's per-layer units; the stitch
    after the dense block plays the role of the paper's stitch after fc7). α starts at α_S on the
    diagonal and (1 − α_S)/(T − 1) elsewhere (the paper's 0.9 / 0.1 for two tasks). The paper's
    larger learning rate for α is not used: every parameter shares the configured optimizer.
    Shared: the towers and the units (every task's loss depends on every tower through α).
    """

    needs_blocks: ClassVar[bool] = True
    same: float = 0.9

    def shared_params(self) -> tuple[str, ...]:
        return (*[f"tower_{t}" for t in self.heads], "stitch")

    def stitch_init(self, key, shape):
        del key
        n, t = shape[0], shape[1]
        other = (1.0 - self.same) / (t - 1) if t > 1 else 0.0
        unit = jnp.full((t, t), other) + (self.same - other) * jnp.eye(t)
        return jnp.broadcast_to(unit, (n, t, t))

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        tasks, blocks = list(self.heads), self.backbone.num_blocks
        towers = [self.backbone.clone(name=f"tower_{t}", parent=self) for t in tasks]
        alpha = StitchUnits(blocks, len(tasks), self.stitch_init, name="stitch")()
        xs = [x] * len(tasks)
        for i in range(blocks):
            xs = [tower(h, train, i, i + 1) for tower, h in zip(towers, xs)]
            xs = list(jnp.tensordot(alpha[i], jnp.stack(xs), axes=1))
        return heads_of(self, dict(zip(tasks, xs)), train)


class StitchUnits(nn.Module):
    """The cross-stitch units: `blocks` T×T matrices (parameter `alpha`)."""

    blocks: int
    tasks: int
    init: Any

    @nn.compact
    def __call__(self) -> jnp.ndarray:
        return self.param("alpha", self.init, (self.blocks, self.tasks, self.tasks))


@ARCHITECTURES.register("mtan", options={})
class MTAN(MultiTaskArchitecture):
    """Multi-Task Attention Network (Liu, Johns & Davison, CVPR 2019, Sec. 3.2).

    A shared trunk (the backbone itself, `backbone`, unchanged) and per task one soft attention
    module per block (`attention_<task>_<i>`): the mask a = sigmoid(h(g(u))) ∈ [0, 1] multiplies
    the shared block's output p elementwise, â = a ⊙ p. g and h are 1×1 convolutions (Dense layers
    on vectors) with ReLU and sigmoid; the paper's BatchNorm inside them is left out, so the
    attention keeps micro-batching possible. The input u of block i > 0 concatenates p with the
    task's previous attended features passed through the shared extractor f (`extract_<i>`, the
    paper's shared 3×3 conv, here after resizing to p's resolution first: the paper pools after
    its conv; resizing first costs p's resolution, not the previous one's). Heads read â of the
    last block. Shared: the trunk and the extractors.
    """

    needs_blocks: ClassVar[bool] = True

    def shared_params(self) -> tuple[str, ...]:
        return ("backbone", *[f"extract_{i}" for i in range(1, self.backbone.num_blocks)])

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        attended: dict[str, jnp.ndarray] = {}
        for i in range(self.backbone.num_blocks):
            x = self.backbone(x, train, i, i + 1)
            extract = Extractor(name=f"extract_{i}") if i else None
            for t in self.heads:
                u = x if extract is None else jnp.concatenate([x, extract(attended[t], x.shape)], axis=-1)
                attended[t] = Attention(x.shape[-1], name=f"attention_{t}_{i}")(u) * x
        return heads_of(self, attended, train)


class Attention(nn.Module):
    """An MTAN attention mask: sigmoid(h(relu(g(u)))) with g, h 1×1 convolutions (Dense layers on
    the channel axis, named `g` and `h`), `features` channels."""

    features: int

    @nn.compact
    def __call__(self, u: jnp.ndarray) -> jnp.ndarray:
        hidden = nn.relu(nn.Dense(self.features, name="g")(u))
        return nn.sigmoid(nn.Dense(self.features, name="h")(hidden))


class Extractor(nn.Module):
    """MTAN's shared feature extractor f: the previous attended features at the shape of the
    current block's output (`shape`): resized (antialiased bilinear) then 3×3 conv + ReLU for
    feature maps, flattened then Dense + ReLU for vectors."""

    @nn.compact
    def __call__(self, prev: jnp.ndarray, shape: tuple[int, ...]) -> jnp.ndarray:
        if len(shape) == 2:
            return nn.relu(nn.Dense(shape[-1])(flat(prev)))
        if prev.ndim != 4:
            raise ValueError("MTAN: a feature map after a vector block")
        prev = jax.image.resize(prev, (prev.shape[0], *shape[1:3], prev.shape[-1]), "linear")
        return nn.relu(ops.Conv(shape[-1], padding="SAME")(prev))


class Gate(nn.Module):
    """A softmax gate over `experts` from the flattened input (MMoE Eq. 6: g(x) = softmax(W x))."""

    experts: int

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return nn.softmax(nn.Dense(self.experts)(flat(x)))


def gate(name: str, experts: int, x: jnp.ndarray) -> jnp.ndarray:
    """The weights of gate `name` (a `Gate` submodule of the calling module) over `experts` for `x`."""
    return Gate(experts, name=name)(x)


@ARCHITECTURES.register("mmoe", options={"experts": Option(3, "number of experts (backbone copies)", positive=True)})
class MMoE(MultiTaskArchitecture):
    """Multi-gate Mixture-of-Experts (Ma, Zhao, Yi, Chen, Hong & Chi, KDD 2018, Eq. 5-6).

    E experts, each a whole copy of the backbone (`expert_<e>`, as LibMTL's image MMoE), and one
    gate per task (`gate_<task>`): a softmax over the experts of a linear map of the flattened
    input. Task t's features are Σ_e g_t(x)_e f_e(x). The paper leaves E open; here E = 3 whole
    CNNs by default, chosen for what the 2-core CPU affords. With one expert this is hard sharing. Shared: the experts (each gate is its task's).
    """

    experts: int = 3

    def shared_params(self) -> tuple[str, ...]:
        return tuple(f"expert_{e}" for e in range(self.experts))

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        outs = jnp.stack([self.backbone.clone(name=f"expert_{e}", parent=self)(x, train)
                          for e in range(self.experts)])
        return heads_of(self, {t: mix(gate(f"gate_{t}", self.experts, x), outs) for t in self.heads}, train)


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


def smooth_step(t: jnp.ndarray, gamma: float) -> jnp.ndarray:
    """The smooth-step function (Hazimeh et al. 2021, Eq. 3): 0 below −γ/2, 1 above γ/2, and the
    cubic −2t³/γ³ + 3t/(2γ) + 1/2 between (continuously differentiable)."""
    cubic = -2.0 / gamma**3 * t**3 + 3.0 / (2.0 * gamma) * t + 0.5
    return jnp.where(t <= -gamma / 2, 0.0, jnp.where(t >= gamma / 2, 1.0, cubic))


def selector(z: jnp.ndarray, gamma: float) -> jnp.ndarray:
    """One single-expert selector (Hazimeh et al. 2021, Eq. 4): z (…×m) to weights over 2^m
    experts, r(z)_e = Π_j S(z_j) if bit j of e is 1 else 1 − S(z_j). A distribution; one-hot once
    every |z_j| ≥ γ/2."""
    m = z.shape[-1]
    bits = (np.arange(2**m)[:, None] >> np.arange(m)[None, :]) & 1  # E×m: expert e's binary code.
    s = smooth_step(z, gamma)[..., None, :]
    return jnp.prod(jnp.where(bits == 1, s, 1.0 - s), axis=-1)


def dselect_weights(z: jnp.ndarray, w: jnp.ndarray, gamma: float) -> jnp.ndarray:
    """The DSelect-k gate (Hazimeh et al. 2021, Eq. 5): z (B×k×m) and w (B×k) to Σ_i softmax(w)_i
    r(z_i), weights over 2^m experts with at most k non-zero once the selectors have converged."""
    return jnp.einsum("bk,bke->be", nn.softmax(w), selector(z, gamma))


class DSelectGate(nn.Module):
    """One task's per-example DSelect-k gate: z = W_z x (k selectors of m = log2 E bits, kernel
    initialised uniformly in ±γ/100 as the paper's code, so every expert starts near weight 1/E)
    and the selectors' weights w = W_w x."""

    experts: int
    k: int
    gamma: float

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        m = int(np.log2(self.experts))
        small = nn.initializers.uniform(self.gamma / 50)  # U[0, γ/50), shifted below to ±γ/100.
        z = nn.Dense(self.k * m, kernel_init=lambda key, shape, dtype=jnp.float32: small(key, shape, dtype)
                     - self.gamma / 100, name="z")(flat(x))
        w = nn.Dense(self.k, name="w")(flat(x))
        return dselect_weights(z.reshape(-1, self.k, m), w, self.gamma)


@ARCHITECTURES.register("dselect_k", options={
    "experts": Option(4, "number of experts (backbone copies), a power of two", choices=(2, 4, 8, 16)),
    "k": Option(2, "experts each task selects (at most `experts`)", positive=True),
    "gamma": Option(1.0, "the smooth-step's width γ", positive=True)})
class DSelectK(MultiTaskArchitecture):
    """DSelect-k (Hazimeh, Zhao, Chowdhery, Sathiamoorthy, Chen, Mazumder, Hong & Chi, NeurIPS 2021).

    MMoE with each task's softmax gate replaced by a per-example DSelect-k gate (`gate_<task>`,
    `DSelectGate`): k differentiable single-expert selectors built from the smooth-step function,
    so that each task ends up using at most k of the E experts (`expert_<e>`, whole backbone
    copies). Defaults: E = 4, k = 2, γ = 1, chosen for the cost of whole-CNN experts (the paper's
    entropy regulariser, which speeds the selectors' convergence, is not used). Shared: the experts.
    """

    experts: int = 4
    k: int = 2
    gamma: float = 1.0

    def shared_params(self) -> tuple[str, ...]:
        return tuple(f"expert_{e}" for e in range(self.experts))

    def config_problem(self) -> str | None:
        return f"k: at most the {self.experts} experts, got {self.k}" if self.k > self.experts else None

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        outs = jnp.stack([self.backbone.clone(name=f"expert_{e}", parent=self)(x, train)
                          for e in range(self.experts)])
        features = {t: mix(DSelectGate(self.experts, self.k, self.gamma, name=f"gate_{t}")(x), outs)
                    for t in self.heads}
        return heads_of(self, features, train)


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


def build_model(model_cfg: Mapping[str, Any], heads: Mapping[str, int]) -> nn.Module:
    """Builds the architecture named in `model_cfg` (default hard sharing) around its backbone,
    with one head per task.

    Args:
      model_cfg: the config's `model` section (MODEL_OPTIONS, the backbone's own options, and the
        architecture's under `model.<architecture>`).
      heads: task name -> number of outputs, in config order.
    """
    name = model_cfg.get("architecture", "hard")
    return ARCHITECTURES[name](backbone=build_backbone(model_cfg), heads=dict(heads),
                               head_hidden=model_cfg["head_hidden"], head_dropout=model_cfg["head_dropout"],
                               **dict(model_cfg.get(name, {})))
