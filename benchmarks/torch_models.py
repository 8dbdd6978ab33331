"""PyTorch twins of mtljax's CNN backbones, for the speed comparison in speed.py."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn


class TorchCNN(nn.Module):
    """The `cnn3` backbone of mtljax/models.py (VALID 3×3 convs, ReLU, 2×2 max-pool) and heads."""

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


def step_rate(model_cfg: dict, task_names: list[str], batch: int) -> float:
    """images/s of an eager PyTorch train step (gather, uint8->float, forward, backward, Adam)."""
    torch.manual_seed(0)
    heads = {t: 10 if t == "digit" else 2 for t in task_names}
    net = TorchCNN(model_cfg["features"], model_cfg["dense"], model_cfg["dropout"], model_cfg["pool_last"], heads)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    n = 8192
    images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8)
    digits = torch.randint(0, 10, (n,))
    labels = {"digit": digits, "parity": digits % 2, "threshold": (digits >= 5).long()}
    perm = torch.randperm(n)

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
        if window:
            best = max(best, steps_per_window * batch / (time.perf_counter() - t))
    return best
