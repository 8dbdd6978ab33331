"""mtljax: multi-task learning in JAX/Flax (README.md). The MTL methods for any training loop are
in `mtljax.mtl` (docs/api.md); `load_run` restores a finished run's model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mtljax import timing as _timing

_timing.mark_start()  # The run's `start` and `imports` phases (summary.json) count from here.


def load_run(run_dir: str | Path, seed: int = 0, which: str = "best") -> tuple[dict, Any, dict]:
    """(config, model, variables) of a run directory: its resolved config, its Flax model, and the
    variables of seed index `seed` from its `which` ("best" or "latest") Orbax checkpoint (their
    moving average where the run kept one), ready for
    `model.apply(variables, images, train=False)` with float images in [0, 1], N×H×W×C.

    Raises:
      mtljax.config.ConfigError: not a run directory. mtljax.train.checkpoint.CheckpointError: no
      such checkpoint. ValueError: no such seed.
    """
    from mtljax import predict  # Imported here: `import mtljax` stays free of jax.

    return predict.load_model(Path(run_dir), seed, which)
