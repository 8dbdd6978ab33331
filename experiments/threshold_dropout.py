"""001 ablation of experiments/threshold.py: dropout 0.3 after the shared dense layer.

    python -m mtljax.run experiments/threshold_dropout.py
"""

from experiments.threshold import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "model": {**BASE["model"], "dropout": 0.3}}
