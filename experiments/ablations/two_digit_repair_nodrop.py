"""two_digit_repair.py without dropout: with pairs drawn afresh every step and each digit warped,
the data may regularise enough on their own.

    python -m mtljax.run experiments/ablations/two_digit_repair_nodrop.py

Measured here (2-core CPU): top 98.81 ± 0.14, bottom 98.74 ± 0.10 % test accuracy (mean ± std of 3
seeds), 14.3 min (run 20261122-093302); the seeds' majority vote: top 99.02, bottom 99.15 %. Not
better than two_digit_repair.py with dropout 0.3 (98.93 ± 0.18 / 98.72 ± 0.18).
"""

from experiments.ablations.two_digit_repair import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "model": {**BASE["model"], "dropout": 0.0}}
