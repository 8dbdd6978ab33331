"""MultiMNIST with PLE (Tang et al. 2020) instead of hard sharing.

CGC in two levels (the CNN's blocks split in two), with a shared gate below the top.
Everything else is experiments/multimnist_hard.py's recipe (mtljax/models/architectures/ple.py has the
design and its choices).

    python -m mtljax.run experiments/multimnist_ple.py
"""

from experiments.multimnist_hard import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "model": {**BASE["model"], "architecture": "ple"}}
