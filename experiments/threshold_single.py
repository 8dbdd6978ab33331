"""threshold.py beside its single-task baselines: the same network and recipe trained once per
task with one head (single_task), to see whether learning the three tasks together helps.

    python -m mtljax.run experiments/threshold_single.py

Measured here (2-core CPU): digit 99.28, parity 99.66, threshold 99.49 % test accuracy, 2.3 min (run
20261122-003236).
"""

from experiments.threshold import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "single_task": True}
