"""The three MNIST tasks (digit, parity, threshold) with MTAN (Liu, Johns & Davison 2019) instead of hard sharing.

The shared CNN with each task's soft attention mask at each block.
Everything else is experiments/threshold_hard.py's recipe (mtljax/models/architectures/mtan.py has the
design and its choices).

    python -m mtljax.run experiments/threshold_mtan.py
"""

from experiments.threshold_hard import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "model": {**BASE["model"], "architecture": "mtan"}}
