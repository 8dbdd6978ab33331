"""The published MNIST speedrun recipe in PyTorch, on this machine: the reference of experiments/speedrun.py.

    python -m benchmarks.tables.torch_speedrun [--runs 10] [--threads N]

The recipe of tuomaso/train_mnist_fast (its final notebook: 99.04 ± 0.07 % in 0.76 s per run on a
GTX 1660 Ti): conv 5×5 1→24, max-pool 2, ReLU; conv 3×3 24→32, max-pool 2, ReLU; dense 800→256,
ReLU; dense 256→10; Adam (β = 0.7, 0.9) under a one-cycle schedule peaking at 1e-2 (PyTorch's
OneCycleLR defaults: 30 % warm-up from peak/25, cosine annealing to peak/25e4, no momentum cycling);
batch 256; one epoch over the 60,000 training images in their stored order; the data held in
memory (on the GPU when PyTorch sees one, as the recipe holds it) as normalised float tensors; the test pass in batches of 2,000. As there, a run's time is
model creation, training and the test pass (imports and the data load are outside it).

Prints each run's test accuracy and time, the median time per run, the process's whole wall time
divided by the number of runs (the measure experiments/speedrun.py reports), and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

_START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from mtljax.data import mnist  # noqa: E402

MEAN, STD = 0.1307, 0.3081  # MNIST's pixel mean and std on [0, 1], the usual normalisation.
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


class SpeedrunNet(nn.Module):
    """Two convolutions and two dense layers (the recipe's network)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 24, 5), nn.Conv2d(24, 32, 3)
        self.fc1, self.fc2 = nn.Linear(800, 256), nn.Linear(256, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """N×28×28(×1) uint8 images as normalised N×1×28×28 floats, and int64 labels."""
    x = torch.from_numpy(images.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0)
    return ((x - MEAN) / STD).to(DEVICE), torch.from_numpy(labels.astype(np.int64)).to(DEVICE)


def one_run(seed: int, train, test, batch: int = 256, lr: float = 1e-2) -> float:
    """Trains one network for one epoch; returns its test accuracy in %."""
    torch.manual_seed(seed)
    net = SpeedrunNet().to(DEVICE)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.7, 0.9))
    steps = (len(train[0]) + batch - 1) // batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, cycle_momentum=False)
    net.train()
    for i in range(steps):
        x, y = train[0][i * batch:(i + 1) * batch], train[1][i * batch:(i + 1) * batch]
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
        sched.step()
    net.eval()
    with torch.no_grad():
        correct = sum(int((net(test[0][s:s + 2000]).argmax(1) == test[1][s:s + 2000]).sum())
                      for s in range(0, len(test[0]), 2000))
    return 100.0 * correct / len(test[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0: PyTorch's default")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = mnist.load_mnist()
    train, test = tensors(data.train_images, data.train_labels), tensors(data.test_images, data.test_labels)
    accs, times = [], []
    for seed in range(args.runs):
        t = time.perf_counter()
        accs.append(one_run(seed, train, test))
        times.append(time.perf_counter() - t)
        print(f"run {seed}: {accs[-1]:.2f} % in {times[-1]:.2f} s", flush=True)
    wall = time.perf_counter() - _START
    result = {"runs": args.runs, "accuracy_mean": float(np.mean(accs)), "accuracy_std": float(np.std(accs, ddof=1)),
              "accuracy_min": min(accs), "median_run_s": statistics.median(times), "wall_per_run_s": wall / args.runs,
              "threads": torch.get_num_threads(), "device": str(DEVICE)}
    print(f"PyTorch {torch.__version__} on {DEVICE}, {result['threads']} threads: {result['accuracy_mean']:.2f} ± "
          f"{result['accuracy_std']:.2f} % (min {min(accs):.2f}), median {result['median_run_s']:.2f} s per run, "
          f"process wall / runs {result['wall_per_run_s']:.2f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
