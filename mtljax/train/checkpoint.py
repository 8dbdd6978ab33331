"""Orbax checkpoints of a run: the latest few epochs, and the best epoch by the monitored metric.

A `latest/` checkpoint (numbered by train step) holds `{"train": TrainState, "best": the best
TrainState so far}` and a JSON `meta` dict: the epoch, the metrics history, the early-stopping
state and, for a run stopped mid-epoch, its position; everything the trainer needs to resume
exactly where it was, in one atomic write. `best/` (numbered by epoch) holds the best TrainState
alone, for evaluation and transfer. Orbax writes into a temporary directory and renames it when
complete, so a checkpoint that was being written when a run died is never listed, and never loaded
(tests/test_robustness.py checks both).

The trainer's per-epoch writes (`save_epoch`) run on a background thread while the next epoch
trains: Orbax's own Python bookkeeping would otherwise stall the loop (even its asynchronous
mode spends most of a save in the caller; docs/performance.md). Writes keep their order, one epoch's
writes finish before the next epoch's start, and a failed write is raised by the next call.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import dataclasses
import threading
from pathlib import Path
from typing import Any, Iterator

import jax
import jax.numpy as jnp

from mtljax import timing


def _orbax():
    """`orbax.checkpoint`, imported on first use (~0.2 s): a new run's first write, on the writer
    thread while the run goes on, imports it, not the run's start."""
    import orbax.checkpoint

    return orbax.checkpoint


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated or does not fit the model."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, read-only directory, ...)."""


class RunCheckpoints:
    """The `latest/` and `best/` checkpoint managers of one run directory."""

    def __init__(self, run_dir: Path, keep: int = 3):
        self._root, self._keep = Path(run_dir).absolute() / "ckpt", keep
        self._managers: tuple[Any, Any] | None = None  # (latest, best), opened on first use.
        self._opening = threading.Lock()
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: concurrent.futures.Future | None = None

    @property
    def latest(self) -> Any:
        """The `latest/` CheckpointManager."""
        return self._open()[0]

    @property
    def best(self) -> Any:
        """The `best/` CheckpointManager."""
        return self._open()[1]

    def _open(self) -> tuple[Any, Any]:
        with self._opening:
            if self._managers is None:
                ocp = _orbax()
                options = lambda n: ocp.CheckpointManagerOptions(max_to_keep=n, create=True,
                                                                  enable_async_checkpointing=False)
                self._managers = (ocp.CheckpointManager(self._root / "latest", options=options(self._keep)),
                                  ocp.CheckpointManager(self._root / "best", options=options(1)))
            return self._managers

    def save(self, step: int, tree: Any, meta: dict) -> None:
        """Saves `tree` and `meta` as latest checkpoint `step`, after any queued write.

        Raises:
          CheckpointWriteError: the write (or a queued one) failed; the earlier checkpoints are untouched.
        """
        self.wait()
        self._write(self.latest, step, tree, meta)

    def save_epoch(self, step: int, tree: Any, meta: dict, best_epoch: int | None = None) -> None:
        """Queues an epoch's writes on the writer thread and returns: latest checkpoint `step`
        (`tree`, `meta`), then, with `best_epoch`, `tree["best"]` as the best checkpoint.

        The writes get their own copies of `tree` (the trainer donates its state to the next
        train call) and of `meta`. On many processes Orbax's writes synchronise them, so there
        they run here, in order.

        Raises:
          CheckpointWriteError: the previous epoch's queued writes failed; nothing is queued.
        """
        self.wait()
        tree, meta = jax.tree.map(jnp.copy, tree), copy.deepcopy(meta)

        def write() -> None:
            with timing.phase("checkpoints" + timing.BACKGROUND):
                self._write(self.latest, step, tree, meta)
                if best_epoch is not None:
                    self._save_best(best_epoch, tree["best"], meta)

        if jax.process_count() > 1:
            write()
            return
        if self._writer is None:
            self._writer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint")
        self._pending = self._writer.submit(write)

    def wait(self) -> None:
        """Returns once the queued writes are done; raises their error, if any."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    @contextlib.contextmanager
    def finishing_writes(self) -> Iterator[None]:
        """Inside, an exception waits for the queued writes before it propagates (a failed write
        then propagates instead, the first exception as its context)."""
        try:
            yield
        except BaseException:
            self.wait()
            raise

    def save_best(self, epoch: int, state: Any, meta: dict) -> None:
        """Saves `state` as the best checkpoint, epoch `epoch` (replacing a newer one left by a
        run that died before its latest checkpoint recorded it), after any queued write."""
        self.wait()
        self._save_best(epoch, state, meta)

    def _save_best(self, epoch: int, state: Any, meta: dict) -> None:
        for newer in [s for s in self.best.all_steps() if s >= epoch]:
            self.best.delete(newer)
        self._write(self.best, epoch, state, meta)

    @staticmethod
    def _write(manager: Any, step: int, tree: Any, meta: dict) -> None:
        ocp = _orbax()
        try:
            if step in manager.all_steps():  # A stop after an epoch's last call saved this step already.
                manager.delete(step)
            manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)))
            manager.wait_until_finished()
        except Exception as exc:  # Orbax may wrap the OSErrors of its writer threads in its own types.
            if not _caused_by_os_error(exc):
                raise
            raise CheckpointWriteError(f"cannot write checkpoint {manager.directory / str(step)}: "
                                       f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}") from exc

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
        """The newest `which` checkpoint's state (in `template`'s shapes) and meta dict.

        A checkpoint written before TrainState had its `ema` field restores into a template without
        moving average (`ema` None)."""
        ocp = _orbax()
        restore = lambda tree: self._restore_newest(which, ocp.args.Composite(
            state=ocp.args.StandardRestore(jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)),
            meta=ocp.args.JsonRestore()))
        try:
            restored = restore(template)
        except CheckpointError:
            old_layout = _without_ema_field(template)
            if old_layout is None or not self._saved_before_ema(which):
                raise
            restored = restore(old_layout)
            restored = {**restored, "state": _with_ema_field(template, restored["state"])}
        return restored["state"], restored["meta"]

    def _saved_before_ema(self, which: str) -> bool:
        """Whether the newest `which` checkpoint exists and its states lack TrainState's `ema` field."""
        manager = self.latest if which == "latest" else self.best
        try:
            on_disk = manager.item_metadata(manager.latest_step())["state"]
            return "ema" not in (on_disk["train"] if which == "latest" else on_disk)
        except Exception:  # noqa: BLE001 - none, or damaged: the caller reports its own error.
            return False

    def load_params(self, which: str = "best") -> dict:
        """The params pytree of the newest `which` checkpoint, as saved (no template needed)."""
        return self.load_variables(which)["params"]

    def load_variables(self, which: str = "best") -> dict:
        """`{"params", "batch_stats"}` of the newest `which` checkpoint, as saved (leading replica axis):
        their moving average when the run kept one (`train.ema_decay`), as evaluation used."""
        ocp = _orbax()
        restored = self._restore_newest(which, ocp.args.Composite(state=ocp.args.StandardRestore()))
        tree = restored["state"]["train"] if which == "latest" else restored["state"]
        tree = tree.get("ema") or tree
        return {"params": tree["params"], "batch_stats": tree.get("batch_stats", {})}

    def close(self) -> None:
        """Waits for the queued writes (raising their error), then closes the managers."""
        try:
            self.wait()
        finally:
            if self._writer is not None:
                self._writer.shutdown()
            for manager in self._managers or ():
                manager.close()


def _without_ema_field(template: Any) -> Any | None:
    """`template` (a TrainState, or a dict of them) with each TrainState as a dict of its fields but
    `ema`, the layout of checkpoints written before that field; None if a state keeps an average."""
    if isinstance(template, dict):
        parts = {k: _without_ema_field(v) for k, v in template.items()}
        return None if any(v is None for v in parts.values()) else parts
    if template.ema is not None:
        return None
    return {f.name: getattr(template, f.name) for f in dataclasses.fields(template) if f.name != "ema"}


def _with_ema_field(template: Any, restored: Any) -> Any:
    """The inverse of `_without_ema_field`: TrainStates again, with no moving average."""
    if isinstance(template, dict):
        return {k: _with_ema_field(v, restored[k]) for k, v in template.items()}
    return type(template)(**restored, ema=None)


def _caused_by_os_error(exc: BaseException | None) -> bool:
    """Whether `exc` or an exception in its cause/context chain is an OSError."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, OSError):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False
