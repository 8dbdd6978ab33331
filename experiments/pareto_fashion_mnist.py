"""Multi-(Fashion+MNIST) of the Pareto-MTL literature: a Fashion-MNIST item top-left and an MNIST
digit bottom-right on a 36×36 canvas (experiments/pareto_multimnist.py's network and recipe).
Fashion-MNIST is not bundled: download its four IDX files into ~/data/fashion-mnist.

    python -m mtljax.run experiments/pareto_fashion_mnist.py --set pareto.rays=0 pareto.condition=hyper
"""

from experiments.pareto_multimnist import CONFIG as BASE

CONFIG = {**BASE, "data": {**BASE["data"], "source": "idx:~/data/fashion-mnist", "second_source": "mnist"}}
