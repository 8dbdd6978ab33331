"""The three MNIST tasks (digit, parity, threshold) with Cross-stitch networks (Misra et al. 2016) instead of hard sharing.

One copy of the CNN per task, a learned T×T unit after each block, initialised at 0.9 / 0.1.
Everything else is experiments/threshold_hard.py's recipe (mtljax/models/architectures/cross_stitch.py has the
design and its choices).

    python -m mtljax.run experiments/threshold_cross_stitch.py
"""

from experiments.threshold_hard import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "model": {**BASE["model"], "architecture": "cross_stitch"}}
