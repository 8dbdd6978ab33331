"""Orbax checkpoints of a run: the latest few epochs, and the best epoch by the monitored metric.

Each checkpoint holds the TrainState (a pytree) and a JSON `meta` dict: the epoch, the metrics
history and the early-stopping state, everything the trainer needs to resume exactly where it was.
Orbax writes into a temporary directory and renames it when complete, so a checkpoint that was
being written when a run died is never listed, and never loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated or does not fit the model."""


class RunCheckpoints:
    """The `latest/` and `best/` checkpoint managers of one run directory."""

    def __init__(self, run_dir: Path, keep: int = 3):
        options = lambda n: ocp.CheckpointManagerOptions(max_to_keep=n, create=True,
                                                          enable_async_checkpointing=False)
        root = Path(run_dir).absolute() / "ckpt"
        self.latest = ocp.CheckpointManager(root / "latest", options=options(keep))
        self.best = ocp.CheckpointManager(root / "best", options=options(1))

    def save(self, epoch: int, state: Any, meta: dict, best: Any = None) -> None:
        """Saves `state` and `meta` as epoch `epoch`; and `best` (a state) as the best, if given."""
        self.latest.save(epoch, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
        if best is not None:
            self.best.save(epoch, args=ocp.args.Composite(state=ocp.args.StandardSave(best),
                                                          meta=ocp.args.JsonSave(meta)))
        self.latest.wait_until_finished()
        self.best.wait_until_finished()

    def _restore_newest(self, which: str, args: Any) -> Any:
        """Restores the newest checkpoint of `which` ("latest" or "best") with Orbax `args`.

        Raises:
          CheckpointError: there is none, or Orbax cannot restore it (truncated, mismatched).
        """
        manager = self.latest if which == "latest" else self.best
        epoch = manager.latest_step()
        if epoch is None:
            raise CheckpointError(f"no {which} checkpoint in {manager.directory}")
        try:
            return manager.restore(epoch, args=args)
        except Exception as exc:  # Orbax raises many types for truncated or mismatched files.
            raise CheckpointError(f"cannot restore {manager.directory / str(epoch)}: "
                                  f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from exc

    def restore(self, template: Any, which: str = "latest") -> tuple[Any, dict]:
        """The newest `which` checkpoint's state (in `template`'s shapes) and meta dict."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        restored = self._restore_newest(which, ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                                                  meta=ocp.args.JsonRestore()))
        return restored["state"], restored["meta"]

    def load_params(self, which: str = "best") -> dict:
        """The params pytree of the newest `which` checkpoint, as saved (no template needed)."""
        restored = self._restore_newest(which, ocp.args.Composite(state=ocp.args.StandardRestore()))
        return restored["state"]["params"]

    def close(self) -> None:
        self.latest.close()
        self.best.close()
