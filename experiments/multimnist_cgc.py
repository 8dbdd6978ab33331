"""MultiMNIST with CGC (Tang et al. 2020) instead of hard sharing.

One shared and one task-specific CNN expert per task, one gate per task.
Everything else is experiments/multimnist_hard.py's recipe (mtljax/models/architectures/cgc.py has the
design and its choices).

    python -m mtljax.run experiments/multimnist_cgc.py
"""

from experiments.multimnist_hard import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "model": {**BASE["model"], "architecture": "cgc"}}
