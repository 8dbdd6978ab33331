"""001 ablation of experiments/threshold.py: 20 epochs instead of 10 (StepLR still x0.1 every 5 epochs).

    python -m mtljax.run experiments/threshold_20ep.py
"""

from experiments.threshold import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "train": {**BASE["train"], "epochs": 20}}
