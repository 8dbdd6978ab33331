"""two_digit_repair.py with milder per-digit warps (shifts <= 1 px, rotations <= 4 degrees, as
multimnist.py): warping each digit on its own makes overlaps the fixed test pairs never show.

    python -m mtljax.run experiments/two_digit_repair_mild.py
"""

from experiments.two_digit_repair import CONFIG as BASE, REFERENCE  # noqa: F401

CONFIG = {**BASE, "augment": {"shift": 1.0, "rotate": 4.0}}
