"""Multi-MNIST of the Pareto-MTL literature (Lin et al. 2019; EPO, PHN, COSMOS, LibMOON): 36×36
images of two digits (top-left, bottom-right), the Multi-LeNet, one model per preference ray.

    python -m mtljax.run experiments/pareto_multimnist.py
    python -m mtljax.run experiments/pareto_multimnist.py --set mtl.strategy=epo

Data: `multi36` (mtljax/data/constructions.py): each MNIST training digit twice beside a random
other digit of another class: 108,000 training and 12,000 validation images (6,000 held-out digits), 20,000
test images. Network: LibMOON's Multi-LeNet (two 5×5 convs of 10 and 20 channels, dense 50, a
linear head per task). Recipe: Adam 1e-3, batch 256. `pareto.rays` = 5 preference rays
evenly spread over the simplex, each a replica of one compiled program, so one run traces the
front; `mtl.strategy` picks the per-ray method (static = linear scalarization, tchebycheff, stch,
pbi, epo, pmtl). How to evaluate a front and the measured hypervolumes: docs/pareto.md.
"""

CONFIG = {
    "tasks": ["left", "right"],
    "data": {"dataset": "multi36", "per_item": 2},
    "model": {"name": "lenet", "features": [10, 20], "kernels": [5, 5], "dense": 50},
    "optimizer": {"name": "adam", "lr": 1e-3},
    "mtl": {"strategy": "static"},
    "pareto": {"rays": 5},
    "train": {"epochs": 10, "batch_size": 256},
}
