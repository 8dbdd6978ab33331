"""MultiMNIST with DSelect-k (Hazimeh et al. 2021) instead of hard sharing.

Four CNN experts, each task selecting k = 2 through smooth-step selectors.
Everything else is experiments/multimnist_hard.py's recipe (mtljax/models/architectures/dselect_k.py has the
design and its choices).

    python -m mtljax.run experiments/multimnist_dselect_k.py
"""

from experiments.multimnist_hard import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "model": {**BASE["model"], "architecture": "dselect_k"}}
