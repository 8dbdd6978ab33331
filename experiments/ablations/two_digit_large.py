"""experiments/two_digit.py with 200,000 training pairs instead of 40,000 (the same 4,000 test
pairs): with 40k pairs the CNN fits its training set (100 % train, 98.4 % validation accuracy).

    python -m mtljax.run experiments/ablations/two_digit_large.py

Measured here (2-core CPU): top 98.38, bottom 98.70 % test accuracy, 6.0 min (run 20261121-223322).
"""

from experiments.two_digit import CONFIG as BASE, REFERENCE  # noqa: F401

# The first two_digit.py recipe (no BatchNorm, dropout or augmentation; 10 epochs), on 200,000 pairs.
CONFIG = {**BASE, "seeds": 1, "data": {**BASE["data"], "train_pairs": 200000},
          "model": {"name": "cnn3", "features": [32, 64, 64], "dense": 128}, "augment": {},
          "schedule": {"name": "step", "step_epochs": 6, "gamma": 0.1}, "train": {**BASE["train"], "epochs": 10}}
