"""001 ablation of experiments/threshold.py: BatchNorm + dropout 0.3 + global average pooling together.

    python -m mtljax.run experiments/threshold_bn_dropout_gap.py
"""

from experiments.threshold import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "model": {**BASE["model"], "batchnorm": True, "dropout": 0.3, "pool": "gap"}}
