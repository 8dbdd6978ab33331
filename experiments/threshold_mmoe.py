"""The three MNIST tasks (digit, parity, threshold) with MMoE (Ma et al. 2018) instead of hard sharing.

Three CNN experts and one softmax gate per task.
Everything else is experiments/threshold_hard.py's recipe (mtljax/models/architectures/mmoe.py has the
design and its choices).

    python -m mtljax.run experiments/threshold_mmoe.py
"""

from experiments.threshold_hard import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "model": {**BASE["model"], "architecture": "mmoe"}}
