"""Learning to Branch (Guo, Lee & Ulbricht, ICML 2020) on threshold.py's three tasks: a search
over where the tasks branch, then the chosen tree retrained from scratch.

Stage 1 (`branch_search`) trains the search network: each of the CNN's four blocks (three convs,
the dense layer) is a level of three nodes, and every node and head reads a Gumbel-softmax mix of
the level above (`model.architecture: branch`). Its run saves the chosen tree (tree.json, drawn in
tree.png and the HTML report). Stage 2 (`branch_tree`) builds that tree alone and trains it from
scratch with the same recipe (`model.branch.tree: 'stage:branch_search'`).

    python -m mtljax.run experiments/branch.py

Measured here (2-core CPU, one seed): the search chose [[0], [0], [0], [0, 0], [0, 1, 1]] (the
convolutions shared; digit's own dense block, parity and threshold sharing the other) in 113 s;
the tree then reached 99.42 / 99.70 / 99.63 % test accuracy (digit / parity / threshold) in 95 s.
"""

from experiments.threshold import CONFIG as BASE

SEARCH = {**BASE, "name": "branch_search", "model": {**BASE["model"], "architecture": "branch",
                                                      "branch": {"width": 3, "temperature": 1.0}},
          "train": {**BASE["train"], "epochs": 3}}
TREE = {**BASE, "name": "branch_tree", "model": {**BASE["model"], "architecture": "branch",
                                                  "branch": {"tree": "stage:branch_search"}}}

STAGES = [SEARCH, TREE]
