"""threshold.py beside its single-task baselines: the same network and recipe trained once per
task with one head (single_task), to see whether learning the three tasks together helps.

    python -m mtljax.run experiments/threshold_single.py

Measured here (2-core CPU): see the README's results table (multi-task and single-task columns).
"""

from experiments.threshold import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "single_task": True}
