"""Ablation of experiments/threshold.py: global average pooling in place of flatten.

    python -m mtljax.run experiments/ablations/threshold_gap.py

Measured here (2-core CPU): digit 99.11, parity 99.55, threshold 99.34 % test accuracy, 1.5 min (run
20261121-215729).
"""

from experiments.threshold import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "model": {**BASE["model"], "pool": "gap"}}
