"""A second real dataset, offline: scikit-learn's UCI optical digits (1,797 digits of 8×8 pixels by
43 writers), written as a user's npz by examples/uci_digits.py and trained with no code: digit,
parity and threshold, an MLP (8×8 is too small for the CNNs' pooling), 20 % held out for test.

    python examples/uci_digits.py && python -m mtljax.run experiments/uci_digits.py --seeds 5
    python -m mtljax.run experiments/uci_digits_folder.py --seeds 5   # the same digits as PNGs + labels.csv

Results: docs/data.md#a-second-real-dataset.
"""

CONFIG = {
    "tasks": ["digit", "parity", "threshold"],
    "data": {"source": "npz:~/.cache/mtljax/uci-digits/digits.npz", "val_size": 180, "test_fraction": 0.2},
    "model": {"name": "mlp", "features": [256, 128], "activation": "relu", "dropout": 0.2},
    "optimizer": {"name": "adam", "lr": 1e-3},
    "train": {"epochs": 40, "batch_size": 32},
}
