"""The three MNIST tasks with hard sharing: the recipe every threshold_<architecture>.py
experiment shares.

experiments/threshold.py's network and optimizer (3-conv CNN, Adam 1e-3, batch 64), 5 epochs with
x0.1 at epoch 3, three seeds as one vmapped program. Shorter than threshold.py so that all seven
architectures fit in about an hour of this 2-core CPU; the same protocol holds for every
architecture (docs/architectures.md).

    python -m mtljax.run experiments/threshold_hard.py
"""

from experiments.threshold import REFERENCE  # noqa: F401

CONFIG = {
    "tasks": ["digit", "parity", "threshold"],
    "seeds": 3,
    "model": {"name": "cnn3", "features": [32, 64, 64], "dense": 128, "architecture": "hard"},
    "optimizer": {"name": "adam", "lr": 1e-3},
    "schedule": {"name": "step", "step_epochs": 3, "gamma": 0.1},
    "train": {"epochs": 5, "batch_size": 64},
}
