"""MultiMNIST, the benchmark of Sener & Koltun (2018), following Sabour et al. (2017).

Construction (mtljax/constructions.py, as in Sener & Koltun's loader): every MNIST image is the
"left" digit and is paired with one other image of the same split drawn at random (seeded), the
"right" digit. On a 36x36 canvas the left digit fills [0:28, 0:28] (up-left) and the right one
[6:34, 6:34] (down-right); where they overlap the pixels are combined by max; the canvas is resized
to 28x28 by nearest neighbour. 54k training, 6k validation and 10k test images. Tasks: left, right.
Published (Sener & Koltun, Table 2): single task 97.23 / 95.90; MGDA-UB 97.26 / 95.90.

    python -m mtljax.run experiments/multimnist.py

Measured here (2-core CPU): left 97.47, right 96.31 % test accuracy, 2.3 min (run 20261121-224142).

Three seeds, `--seeds 3` (session-3 code, 2.6 min): left 97.25 ± 0.12, right 96.26 ± 0.15 % (mean ± std).
"""

REFERENCE = {"left": 97.23, "right": 95.90}  # Sener & Koltun 2018, single-task baselines, %.

CONFIG = {
    "tasks": ["left", "right"],
    "data": {"dataset": "multimnist"},
    "model": {"name": "cnn3", "features": [32, 64, 64], "dense": 128},
    "optimizer": {"name": "adam", "lr": 1e-3},
    "schedule": {"name": "step", "step_epochs": 8, "gamma": 0.1},
    "train": {"epochs": 12, "batch_size": 64},
}
