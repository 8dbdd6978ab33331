"""001 ablation of experiments/threshold.py: global average pooling in place of flatten.

    python -m mtljax.run experiments/threshold_gap.py
"""

from experiments.threshold import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "model": {**BASE["model"], "pool": "gap"}}
