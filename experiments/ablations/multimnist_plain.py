"""MultiMNIST (experiments/multimnist.py's data and network) with the first, plain recipe: no
BatchNorm, no augmentation, 12 epochs with step decay at 8, three seeds.

    python -m mtljax.run experiments/ablations/multimnist_plain.py

It overfits (train loss ~0.002) and stays ~0.3 % under multimnist.py on both tasks.

Measured here (2-core CPU): left 97.25 ± 0.12, right 96.26 ± 0.15 % test accuracy (mean ± std of 3
seeds), 3.2 min (run 20261122-061949).
"""

from experiments.multimnist import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {
    **BASE,
    "model": {"name": "cnn3", "features": [32, 64, 64], "dense": 128},
    "augment": {},
    "schedule": {"name": "step", "step_epochs": 8, "gamma": 0.1},
    "train": {"epochs": 12, "batch_size": 64},
}
