"""two_digit_repair.py without dropout: with pairs drawn afresh every step and each digit warped,
the data may regularise enough on their own.

    python -m mtljax.run experiments/two_digit_repair_nodrop.py
"""

from experiments.two_digit_repair import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "model": {**BASE["model"], "dropout": 0.0}}
