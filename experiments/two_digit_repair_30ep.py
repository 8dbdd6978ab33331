"""two_digit_repair.py trained for 30 epochs, step decay at 21: with pairs drawn afresh every
step, more epochs are more distinct training images, not more passes over the same ones.

    python -m mtljax.run experiments/two_digit_repair_30ep.py
"""

from experiments.two_digit_repair import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "schedule": {**BASE["schedule"], "step_epochs": 21}, "train": {**BASE["train"], "epochs": 30}}
