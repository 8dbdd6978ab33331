"""001 ablation of experiments/threshold.py: BatchNorm after every conv.

    python -m mtljax.run experiments/threshold_bn.py
"""

from experiments.threshold import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "model": {**BASE["model"], "batchnorm": True}}
