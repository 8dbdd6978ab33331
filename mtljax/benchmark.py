"""`python -m mtljax.benchmark`: the method comparison's first name, kept so that commands written
with it still run; the command is `python -m mtljax.compare` (mtljax/compare/)."""

import sys

from mtljax.compare.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
