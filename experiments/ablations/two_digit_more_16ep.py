"""two_digit_more.py (120,000 training pairs) trained for 16 epochs, step decay at 11.

    python -m mtljax.run experiments/ablations/two_digit_more_16ep.py

Measured here (2-core CPU): top 98.75, bottom 99.12 % test accuracy, 9.9 min (run 20261122-011810).
"""

from experiments.ablations.two_digit_more import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "schedule": {**BASE["schedule"], "step_epochs": 11}, "train": {**BASE["train"], "epochs": 16}}
