"""MultiMNIST with a regression task beside the two digits: `sum`, the sum of the left and right
digits (0-18), one output trained with the Huber loss (delta 1) and reported as mean absolute and
root-mean-square error. Otherwise experiments/multimnist.py's recipe (BatchNorm, warps <= 1 px and
<= 4 degrees, 20 epochs, step decay at 14, three seeds).

    python -m mtljax.run experiments/multimnist_sum.py
"""

from experiments.multimnist import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "tasks": ["left", "right", "sum"]}
