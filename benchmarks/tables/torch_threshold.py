"""experiments/threshold.py's recipe in PyTorch: the wall-time reference of benchmarks/full_run.py.

    python -m benchmarks.tables.torch_threshold

Same data split (mtljax.data), network (benchmarks/torch_models.py), Adam 1e-3, batch 64, StepLR
(x0.1 after 5 epochs), 10 epochs with a validation pass each, test at the end. Prints the wall time
and test accuracy per task.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from mtljax import config, data

from benchmarks.torch_models import TorchCNN


def accuracy(net, split, tasks, batch=1000):
    net.eval()
    correct = {t: 0 for t in tasks}
    with torch.no_grad():
        for s in range(0, len(split), batch):
            out = net(torch.from_numpy(split.images[s:s + batch]).permute(0, 3, 1, 2).float() / 255.0)
            for t in tasks:
                correct[t] += int((out[t].argmax(1).numpy() == split.labels[t][s:s + batch]).sum())
    net.train()
    return {t: correct[t] / len(split) for t in tasks}


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    t_start = time.perf_counter()
    cfg = config.load_experiment("experiments/threshold.py")
    splits = data.build_splits(cfg)
    tasks, train = list(cfg["tasks"]), splits["train"]
    torch.manual_seed(cfg["seed"])
    m = cfg["model"]
    net = TorchCNN(m["features"], m["dense"], m["dropout"], m["pool_last"], {"digit": 10, "parity": 2, "threshold": 2})
    opt = torch.optim.Adam(net.parameters(), cfg["optimizer"]["lr"])
    sched = torch.optim.lr_scheduler.StepLR(opt, cfg["schedule"]["step_epochs"], cfg["schedule"]["gamma"])
    images = torch.from_numpy(train.images).permute(0, 3, 1, 2).contiguous()
    labels = {t: torch.from_numpy(train.labels[t]).long() for t in tasks}
    batch = cfg["train"]["batch_size"]
    for epoch in range(1, cfg["train"]["epochs"] + 1):
        t_epoch = time.perf_counter()
        perm = torch.from_numpy(np.random.default_rng([cfg["seed"], epoch]).permutation(len(train)))
        for i in range(len(train) // batch):
            idx = perm[i * batch:(i + 1) * batch]
            out = net(images[idx].float() / 255.0)
            loss = sum(F.cross_entropy(out[t], labels[t][idx]) for t in tasks)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        val = accuracy(net, splits["val"], tasks)
        print(f"epoch {epoch}: val " + " ".join(f"{t} {100 * a:.2f}%" for t, a in val.items())
              + f" | {time.perf_counter() - t_epoch:.1f}s", flush=True)
    test = accuracy(net, splits["test"], tasks)
    print("test: " + " | ".join(f"{t} {100 * a:.2f}%" for t, a in test.items())
          + f" | wall {time.perf_counter() - t_start:.0f}s")


if __name__ == "__main__":
    main()
