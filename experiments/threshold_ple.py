"""The three MNIST tasks (digit, parity, threshold) with PLE (Tang et al. 2020) instead of hard sharing.

CGC in two levels (the CNN's blocks split in two), with a shared gate below the top.
Everything else is experiments/threshold_hard.py's recipe (mtljax/models/architectures/ple.py has the
design and its choices).

    python -m mtljax.run experiments/threshold_ple.py
"""

from experiments.threshold_hard import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "model": {**BASE["model"], "architecture": "ple"}}
