"""Ablation of experiments/threshold.py: BatchNorm after every conv.

    python -m mtljax.run experiments/ablations/threshold_bn.py

Measured here (2-core CPU): digit 99.39, parity 99.64, threshold 99.58 % test accuracy, 1.5 min (run
20261121-223031).
"""

from experiments.threshold import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "model": {**BASE["model"], "batchnorm": True}}
