"""MultiMNIST with hard sharing: the recipe every multimnist_<architecture>.py experiment shares.

experiments/multimnist.py's data and 3-conv CNN without BatchNorm or augmentation (so the soft-
sharing models, two to four CNNs each, micro-batch on this CPU as hard sharing does), Adam 1e-3,
batch 64, 6 epochs with x0.1 at epoch 4, three seeds as one vmapped program. Shorter than
multimnist.py so that all seven architectures fit in about an hour of this 2-core CPU; the same
protocol holds for every architecture (docs/architectures.md).

    python -m mtljax.run experiments/multimnist_hard.py
"""

from experiments.multimnist import REFERENCE  # noqa: F401

CONFIG = {
    "tasks": ["left", "right"],
    "seeds": 3,
    "data": {"dataset": "multimnist"},
    "model": {"name": "cnn3", "features": [32, 64, 64], "dense": 128, "architecture": "hard"},
    "optimizer": {"name": "adam", "lr": 1e-3},
    "schedule": {"name": "step", "step_epochs": 4, "gamma": 0.1},
    "train": {"epochs": 6, "batch_size": 64},
}
