"""PyTorch twins of every mtljax backbone (cnn3, vgg, skipcnn, mlp; mlp_scratch is the mlp's math), for speed.py."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn


TEN_WAY = ("digit", "left", "right")  # Tasks with 10 classes; the others have 2.
# The GPU when PyTorch sees one (its CUDA build, on an accelerator machine), as mtljax uses JAX's.
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize() -> None:
    """Waits for the device's queued work (CUDA runs asynchronously); nothing to wait for on CPU."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


class TorchCNN(nn.Module):
    """The `cnn3` backbone of mtljax/models/backbones.py (VALID 3×3 convs, ReLU, 2×2 max-pool) and heads."""

    def __init__(self, features, dense, dropout, pool_last, heads):
        super().__init__()
        widths = [1, *features]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3) for a, b in zip(widths, widths[1:]))
        self.pool_last = pool_last
        size = 28
        for i in range(len(features)):
            size -= 2
            if i < len(features) - 1 or pool_last:
                size //= 2
        self.dense = nn.Linear(features[-1] * size * size, dense)
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({t: nn.Linear(dense, n) for t, n in heads.items()})

    def forward(self, x):
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            if i < len(self.convs) - 1 or self.pool_last:
                x = F.max_pool2d(x, 2)
        x = self.dropout(F.relu(self.dense(x.flatten(1))))
        return {t: head(x) for t, head in self.heads.items()}


class Heads(nn.Module):
    """One head per task: Linear, or Linear(hidden) -> ReLU -> Dropout -> Linear (`head_hidden`)."""

    def __init__(self, width, heads, hidden=0, dropout=0.0):
        super().__init__()
        make = lambda n: (nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n))
                          if hidden else nn.Linear(width, n))
        self.heads = nn.ModuleDict({t: make(n) for t, n in heads.items()})

    def forward(self, x):
        return {t: head(x) for t, head in self.heads.items()}


class TorchVGG(nn.Module):
    """The `vgg` backbone: per width Conv 3×3 SAME -> ReLU -> BatchNorm -> MaxPool 2; Flatten -> Dropout."""

    def __init__(self, features, dropout, heads, head_hidden, head_dropout, channels=1):
        super().__init__()
        widths, blocks, size = [channels, *features], [], 28
        for a, b in zip(widths, widths[1:]):
            blocks += [nn.Conv2d(a, b, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(b, momentum=0.01), nn.MaxPool2d(2)]
            size //= 2
        self.trunk = nn.Sequential(*blocks, nn.Flatten(), nn.Dropout(dropout))
        self.heads = Heads(features[-1] * size * size, heads, head_hidden, head_dropout)

    def forward(self, x):
        return self.heads(self.trunk(x))


class TorchSkipCNN(nn.Module):
    """The `skipcnn` backbone: per width x = ReLU(BN(conv x)); x = ReLU(x + BN(conv ReLU(BN(conv x))));
    MaxPool 2; then Flatten -> Dense -> ReLU -> Dropout."""

    def __init__(self, features, dense, dropout, heads, channels=3):
        super().__init__()
        conv = lambda a, b: nn.Sequential(nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b, momentum=0.1))
        widths, size = [channels, *features], 28
        self.blocks = nn.ModuleList()
        for a, b in zip(widths, widths[1:]):
            self.blocks.append(nn.ModuleList([conv(a, b), conv(b, b), conv(b, b)]))
            size //= 2
        self.dense = nn.Linear(features[-1] * size * size, dense)
        self.dropout = nn.Dropout(dropout)
        self.heads = Heads(dense, heads)

    def forward(self, x):
        for first, second, third in self.blocks:
            x = F.relu(first(x))
            x = F.max_pool2d(F.relu(x + third(F.relu(second(x)))), 2)
        return self.heads(self.dropout(F.relu(self.dense(x.flatten(1)))))


class TorchMLP(nn.Module):
    """The `mlp` / `mlp_scratch` backbones: Flatten -> (Linear -> activation) per width."""

    def __init__(self, features, activation, heads, channels=1):
        super().__init__()
        widths, layers = [28 * 28 * channels, *features], []
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.01) if activation == "leaky_relu" else nn.ReLU()]
        self.trunk = nn.Sequential(nn.Flatten(), *layers)
        self.heads = Heads(widths[-1], heads)

    def forward(self, x):
        return self.heads(self.trunk(x))


def build(model_cfg: dict, heads: dict[str, int], channels: int) -> nn.Module:
    """The PyTorch twin of mtljax's model for `model_cfg` (a resolved `model` config section)."""
    name = model_cfg["name"]
    if model_cfg.get("architecture", "hard") != "hard":
        from benchmarks import torch_architectures
        from mtljax.models.architectures import ARCHITECTURES

        arch = model_cfg["architecture"]
        options = {k: o.default for k, o in ARCHITECTURES.options(arch).items()} | dict(model_cfg.get(arch, {}))
        return torch_architectures.build(model_cfg, options, heads, channels)
    if name == "cnn3":
        return TorchCNN(model_cfg["features"], model_cfg["dense"], model_cfg["dropout"], model_cfg["pool_last"], heads)
    if name == "vgg":
        return TorchVGG(model_cfg["features"], model_cfg["dropout"], heads, model_cfg["head_hidden"],
                        model_cfg["head_dropout"], channels)
    if name == "skipcnn":
        return TorchSkipCNN(model_cfg["features"], model_cfg["dense"], model_cfg["dropout"], heads, channels)
    return TorchMLP(model_cfg["features"], model_cfg["activation"], heads, channels)


def step_rate(model_cfg: dict, task_names: list[str], batch: int, channels: int = 1) -> float:
    """images/s of an eager PyTorch train step (gather, uint8->float, forward, backward, Adam), on
    `DEVICE` with the data held there."""
    torch.manual_seed(0)
    heads = {t: 10 if t in TEN_WAY else 2 for t in task_names}
    net = build(model_cfg, heads, channels).to(DEVICE)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    n = 8192
    images = torch.randint(0, 256, (n, channels, 28, 28), dtype=torch.uint8, device=DEVICE)
    digits = torch.randint(0, 10, (n,), device=DEVICE)
    labels = {"digit": digits, "parity": digits % 2, "threshold": (digits >= 5).long(),
              "color": torch.randint(0, 2, (n,), device=DEVICE), "left": digits, "right": digits.flip(0)}
    perm = torch.randperm(n, device=DEVICE)

    def step(i):
        idx = perm[(i * batch) % (n - batch):][:batch]
        out = net(images[idx].float() / 255.0)
        loss = sum(F.cross_entropy(out[t], labels[t][idx]) for t in task_names)
        opt.zero_grad()
        loss.backward()
        opt.step()

    steps_per_window = max(10, 2048 // batch)
    best = 0.0
    for window in range(4):
        t = time.perf_counter()
        for i in range(steps_per_window):
            step(i)
        synchronize()
        if window:
            best = max(best, steps_per_window * batch / (time.perf_counter() - t))
    return best
