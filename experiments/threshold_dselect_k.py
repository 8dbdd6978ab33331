"""The three MNIST tasks (digit, parity, threshold) with DSelect-k (Hazimeh et al. 2021) instead of hard sharing.

Four CNN experts, each task selecting k = 2 through smooth-step selectors.
Everything else is experiments/threshold_hard.py's recipe (mtljax/models/architectures/dselect_k.py has the
design and its choices).

    python -m mtljax.run experiments/threshold_dselect_k.py
"""

from experiments.threshold_hard import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "model": {**BASE["model"], "architecture": "dselect_k"}}
