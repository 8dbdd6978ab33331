"""experiments/vgg_parity.py without augmentation.

    python -m mtljax.run experiments/vgg_parity_noaug.py
"""

from experiments.vgg_parity import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "augment": {"shift": 0.0, "rotate": 0.0, "scale": 0.0}}
