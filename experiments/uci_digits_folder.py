"""The UCI digits of experiments/uci_digits.py read from a folder of PNG files and labels.csv (as
written by examples/uci_digits.py): the same items, so the same splits and the same results.

    python examples/uci_digits.py && python -m mtljax.run experiments/uci_digits_folder.py --seeds 5
"""

from experiments.uci_digits import CONFIG as BASE

CONFIG = {**BASE, "data": {**BASE["data"], "source": "folder:~/.cache/mtljax/uci-digits/folder"}}
