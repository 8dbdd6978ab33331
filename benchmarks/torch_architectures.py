"""PyTorch twins of mtljax's soft-sharing architectures (mtljax/models/architectures/) on the cnn3
backbone, for speed.py: the same layers, widths, gates and mixing, so that both sides do the same
work per image. Initialisation is PyTorch's own: only the speed is compared.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class CNN3Blocks(nn.Module):
    """cnn3 (no BatchNorm) run block by block: conv i → ReLU (→ 2×2 pool), then flatten → dense → ReLU."""

    def __init__(self, features, dense, pool_last, channels=1, size=28):
        super().__init__()
        widths = [channels, *features]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3) for a, b in zip(widths, widths[1:]))
        self.pooled = [i < len(features) - 1 or pool_last for i in range(len(features))]
        for pooled in self.pooled:
            size = (size - 2) // 2 if pooled else size - 2
        self.dense = nn.Linear(features[-1] * size * size, dense)
        self.num_blocks = len(features) + 1

    def block(self, i, x):
        if i == len(self.convs):
            return F.relu(self.dense(x.flatten(1)))
        x = F.relu(self.convs[i](x))
        return F.max_pool2d(x, 2) if self.pooled[i] else x

    def forward(self, x, start=0, stop=None):
        for i in range(start, self.num_blocks if stop is None else stop):
            x = self.block(i, x)
        return x


def mix(weights, experts):
    """Σ_e weights[b, e] · experts[e][b, ...]."""
    return torch.einsum("be,eb...->b...", weights, torch.stack(experts))


class CrossStitch(nn.Module):
    """One backbone per task; after every block, T×T learned mixing of the tasks' activations."""

    def __init__(self, make, tasks, same=0.9):
        super().__init__()
        self.tasks = list(tasks)
        self.towers = nn.ModuleList(make() for _ in self.tasks)
        t, other = len(self.tasks), (1.0 - same) / max(len(self.tasks) - 1, 1)
        unit = torch.full((t, t), other) + (same - other) * torch.eye(t)
        self.alpha = nn.Parameter(unit.repeat(self.towers[0].num_blocks, 1, 1))

    def forward(self, x):
        xs = [x] * len(self.tasks)
        for i in range(self.towers[0].num_blocks):
            xs = torch.tensordot(self.alpha[i], torch.stack([tw.block(i, h) for tw, h in zip(self.towers, xs)]), 1)
            xs = list(xs)
        return dict(zip(self.tasks, xs))


class MTAN(nn.Module):
    """Shared trunk; per task and block an attention mask sigmoid(h(relu(g(u)))) (1×1 convs); u
    concatenates the block output with the shared extractor of the task's previous attended features."""

    def __init__(self, make, tasks):
        super().__init__()
        self.tasks, self.trunk = list(tasks), make()
        probe = [torch.zeros(1, 1, 28, 28)]
        for i in range(self.trunk.num_blocks):
            probe.append(self.trunk.block(i, probe[-1]))
        shapes = [p.shape for p in probe[1:]]
        width = lambda s: s[1]
        conv1 = lambda a, b, vec: nn.Linear(a, b) if vec else nn.Conv2d(a, b, 1)
        self.attn = nn.ModuleDict()
        for t in self.tasks:
            for i, s in enumerate(shapes):
                c, vec = width(s), len(s) == 2
                self.attn[f"{t}_{i}_g"] = conv1(c if i == 0 else 2 * c, c, vec)
                self.attn[f"{t}_{i}_h"] = conv1(c, c, vec)
        self.extract = nn.ModuleList(
            nn.Linear(math.prod(shapes[i - 1][1:]), width(s)) if len(s) == 2 else nn.Conv2d(width(shapes[i - 1]), width(s), 3, padding=1)
            for i, s in enumerate(shapes) if i)
        self.shapes = shapes

    def forward(self, x):
        attended = {}
        for i, shape in enumerate(self.shapes):
            x = self.trunk.block(i, x)
            for t in self.tasks:
                u = x
                if i:
                    prev = attended[t]
                    if len(shape) == 2:
                        prev = prev.flatten(1)
                    else:
                        prev = F.interpolate(prev, size=shape[2:], mode="bilinear", antialias=True)
                    u = torch.cat([x, F.relu(self.extract[i - 1](prev))], 1)
                a = torch.sigmoid(self.attn[f"{t}_{i}_h"](F.relu(self.attn[f"{t}_{i}_g"](u))))
                attended[t] = a * x
        return attended


class Gate(nn.Module):
    """softmax(W x) over `experts` from the flattened input."""

    def __init__(self, inputs, experts):
        super().__init__()
        self.linear = nn.Linear(inputs, experts)

    def forward(self, x):
        return F.softmax(self.linear(x.flatten(1)), -1)


class CGC(nn.Module):
    """Shared and per-task whole-backbone experts, a softmax gate per task (MMoE: no task experts)."""

    def __init__(self, make, tasks, shared, own, pixels=784):
        super().__init__()
        self.tasks = list(tasks)
        self.shared = nn.ModuleList(make() for _ in range(shared))
        self.own = nn.ModuleDict({t: nn.ModuleList(make() for _ in range(own)) for t in self.tasks})
        self.gates = nn.ModuleDict({t: Gate(pixels, own + shared) for t in self.tasks})

    def forward(self, x):
        shared = [e(x) for e in self.shared]
        return {t: mix(self.gates[t](x), [e(x) for e in self.own[t]] + shared) for t in self.tasks}


class PLE(nn.Module):
    """CGC in levels over consecutive groups of the backbone's blocks, with shared gates below the top.
    Each expert holds a whole backbone but runs only its level's blocks; the other blocks get no
    gradient, and Adam skips them (mtljax's experts create only the blocks they run)."""

    def __init__(self, make, tasks, levels, shared, own):
        super().__init__()
        self.tasks, blocks = list(tasks), make().num_blocks
        sizes = [len(p) for p in torch.arange(blocks).tensor_split(levels)]
        self.groups = [(sum(sizes[:i]), sum(sizes[:i + 1])) for i in range(levels)]
        self.levels = nn.ModuleList()
        x = torch.zeros(1, 1, 28, 28)
        for level, (start, stop) in enumerate(self.groups):
            m = nn.Module()
            m.shared = nn.ModuleList(make() for _ in range(shared))
            m.own = nn.ModuleDict({t: nn.ModuleList(make() for _ in range(own)) for t in self.tasks})
            m.gates = nn.ModuleDict({t: Gate(x[0].numel(), own + shared) for t in self.tasks})
            if level < levels - 1:
                m.gates["shared"] = Gate(x[0].numel(), len(self.tasks) * own + shared)
            self.levels.append(m)
            x = m.shared[0](x, start, stop)

    def forward(self, x):
        streams, shared_stream = {t: x for t in self.tasks}, x
        for level, ((start, stop), m) in enumerate(zip(self.groups, self.levels)):
            shared = [e(shared_stream, start, stop) for e in m.shared]
            own = {t: [e(streams[t], start, stop) for e in m.own[t]] for t in self.tasks}
            if level < len(self.groups) - 1:
                every = [o for t in self.tasks for o in own[t]] + shared
                shared_stream = mix(m.gates["shared"](shared_stream), every)
            streams = {t: mix(m.gates[t](streams[t]), own[t] + shared) for t in self.tasks}
        return streams


def smooth_step(t, gamma):
    cubic = -2.0 / gamma**3 * t**3 + 3.0 / (2.0 * gamma) * t + 0.5
    return torch.where(t <= -gamma / 2, 0.0, torch.where(t >= gamma / 2, 1.0, cubic))


class DSelectK(nn.Module):
    """Whole-backbone experts; per task a DSelect-k gate of k smooth-step selectors over log2 E bits."""

    def __init__(self, make, tasks, experts, k, gamma, pixels=784):
        super().__init__()
        self.tasks, self.k, self.gamma = list(tasks), k, gamma
        self.m = int(math.log2(experts))
        self.experts = nn.ModuleList(make() for _ in range(experts))
        self.z = nn.ModuleDict({t: nn.Linear(pixels, k * self.m) for t in self.tasks})
        self.w = nn.ModuleDict({t: nn.Linear(pixels, k) for t in self.tasks})
        self.register_buffer("bits", (torch.arange(experts)[:, None] >> torch.arange(self.m)[None, :]) & 1)

    def weights(self, t, flat):
        s = smooth_step(self.z[t](flat).view(-1, self.k, self.m), self.gamma)[..., None, :]
        r = torch.where(self.bits == 1, s, 1.0 - s).prod(-1)  # B×k×E
        return torch.einsum("bk,bke->be", F.softmax(self.w[t](flat), -1), r)

    def forward(self, x):
        outs, flat = [e(x) for e in self.experts], x.flatten(1)
        return {t: mix(self.weights(t, flat), outs) for t in self.tasks}


class WithHeads(nn.Module):
    """An architecture's per-task features, then one Linear head per task."""

    def __init__(self, body, width, heads):
        super().__init__()
        self.body = body
        self.heads = nn.ModuleDict({t: nn.Linear(width, n) for t, n in heads.items()})

    def forward(self, x):
        features = self.body(x)
        return {t: head(features[t]) for t, head in self.heads.items()}


def build(model_cfg: dict, options: dict, heads: dict[str, int], channels: int = 1) -> nn.Module:
    """The twin of `model.architecture` on cnn3 (`options`: the architecture's resolved options)."""
    make = lambda: CNN3Blocks(model_cfg["features"], model_cfg["dense"], model_cfg["pool_last"], channels)
    name, tasks = model_cfg["architecture"], list(heads)
    bodies = {
        "cross_stitch": lambda: CrossStitch(make, tasks, options["same"]),
        "mtan": lambda: MTAN(make, tasks),
        "mmoe": lambda: CGC(make, tasks, options["experts"], 0),
        "cgc": lambda: CGC(make, tasks, options["shared_experts"], options["task_experts"]),
        "ple": lambda: PLE(make, tasks, options["levels"], options["shared_experts"], options["task_experts"]),
        "dselect_k": lambda: DSelectK(make, tasks, options["experts"], options["k"], options["gamma"]),
    }
    return WithHeads(bodies[name](), model_cfg["dense"], heads)
