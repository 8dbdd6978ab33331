"""two_digit.py with its training pairs stacked in the train step (`data.compose: "repair"`,
mtljax/compose.py): each digit warped by its own random map (shifts <= 2 px, rotations <= 8
degrees), and the bottom digits re-paired within every batch, so no pair repeats. Validation and
test are two_digit.py's fixed pairs.

    python -m mtljax.run experiments/two_digit_repair.py
"""

from experiments.two_digit import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "data": {**BASE["data"], "compose": "repair"}}
