"""MultiMNIST with a regression task beside the two digits: `sum`, the sum of the left and right
digits (0-18), one output trained with the Huber loss (delta 1) and reported as mean absolute and
root-mean-square error. Otherwise experiments/multimnist.py's recipe (BatchNorm, warps <= 1 px and
<= 4 degrees, 20 epochs, step decay at 14, three seeds).

    python -m mtljax.run experiments/multimnist_sum.py

Measured here (2-core CPU, shared with other jobs): left 97.75 ± 0.07, right 96.71 ± 0.11 % test
accuracy (mean ± std of 3 seeds; multimnist.py without the sum: 97.72 ± 0.12 / 96.64 ± 0.14), sum
MAE 0.613 ± 0.018, RMSE 1.014 ± 0.023 (seeds' MAE 0.593 / 0.618 / 0.628), 23.5 min (run
20261129-231749).
"""

from experiments.multimnist import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "tasks": ["left", "right", "sum"]}
