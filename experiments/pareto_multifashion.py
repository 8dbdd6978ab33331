"""Multi-Fashion of the Pareto-MTL literature: experiments/pareto_multimnist.py's construction,
network and recipe over Fashion-MNIST's IDX files (two clothing items of different classes on a
36×36 canvas). Fashion-MNIST is not bundled: download its four IDX files into ~/data/fashion-mnist
(or point data.source elsewhere).

    python -m mtljax.run experiments/pareto_multifashion.py --set mtl.strategy=epo
"""

from experiments.pareto_multimnist import CONFIG as BASE

CONFIG = {**BASE, "data": {**BASE["data"], "source": "idx:~/data/fashion-mnist"}}
