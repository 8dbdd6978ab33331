"""MultiMNIST, the benchmark of Sener & Koltun (2018), following Sabour et al. (2017).

Construction (mtljax/data/constructions.py, as in Sener & Koltun's loader): every MNIST image is the
"left" digit and is paired with one other image of the same split drawn at random (seeded), the
"right" digit. On a 36x36 canvas the left digit fills [0:28, 0:28] (up-left) and the right one
[6:34, 6:34] (down-right); where they overlap the pixels are combined by max; the canvas is resized
to 28x28 by nearest neighbour. 54k training, 6k validation and 10k test images. Tasks: left, right.
Published (Sener & Koltun, Table 2): single task 97.23 / 95.90; MGDA-UB 97.26 / 95.90.

    python -m mtljax.run experiments/multimnist.py

Recipe: the 3-conv CNN with BatchNorm after every conv; augmentation of the whole 28x28 canvas on
device, fresh each epoch (shifts <= 1 px, rotations <= 4 degrees: the digits are already small and
overlapping, stronger warps (2 px, 8 degrees, experiments/ablations/multimnist_aug.py) cost accuracy); Adam
1e-3, batch 64, 20 epochs, x0.1 at epoch 14; three seeds as one vmapped program (mean ± std).
The plain recipe (no BatchNorm, no augmentation, 12 epochs) is experiments/ablations/multimnist_plain.py.

Measured here (2-core CPU): left 97.72 ± 0.12, right 96.64 ± 0.14 % test accuracy (mean ± std of 3
seeds), 10.9 min (run 20261122-060851).
"""

REFERENCE = {"left": 97.23, "right": 95.90}  # Sener & Koltun 2018, single-task baselines, %.

CONFIG = {
    "tasks": ["left", "right"],
    "seeds": 3,
    "data": {"dataset": "multimnist"},
    "model": {"name": "cnn3", "features": [32, 64, 64], "dense": 128, "batchnorm": True},
    "optimizer": {"name": "adam", "lr": 1e-3},
    "schedule": {"name": "step", "step_epochs": 14, "gamma": 0.1},
    "augment": {"shift": 1.0, "rotate": 4.0},
    "train": {"epochs": 20, "batch_size": 64},
}
