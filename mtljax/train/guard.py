"""What stops a run on purpose: SIGINT/SIGTERM (stop cleanly, resumable) and non-finite numbers
(stop loudly, or skip the step)."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator, Mapping, Sequence

import numpy as np


class StopRequested(Exception):
    """A SIGINT or SIGTERM arrived; the run wrote a checkpoint of where it stopped."""

    def __init__(self, signum: int, epoch: int, step: int):
        super().__init__(f"stopped by {signal.Signals(signum).name} in epoch {epoch} after step {step}; "
                         f"a checkpoint of this point was written")
        self.signum, self.epoch, self.step = signum, epoch, step


class NonFiniteError(RuntimeError):
    """A loss or gradient was NaN or Inf and `train.nonfinite` is "stop"."""


@contextlib.contextmanager
def stop_signals() -> Iterator[list[int]]:
    """While active, SIGINT and SIGTERM only append their number to the yielded list, which the
    training loop polls between jitted calls: the current call (up to `steps_per_call` steps)
    finishes, the loop checkpoints and stops. Outside the main thread (no signals) a no-op."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def check_finite(sums: Mapping[str, np.ndarray], task_names: Sequence[str], epoch: int, mode: str) -> int:
    """The number of skipped (non-finite) steps in these per-seed sums of step metrics.

    Raises:
      NonFiniteError: there were some and `mode` is "stop"; the message names the first bad step,
        the epoch, the seeds and the tasks (or the gradients).
    """
    bad = np.asarray(sums["nan/steps"])
    if not bad.any() or mode == "skip":
        return int(bad.sum())
    tasks = [t for t in task_names if np.asarray(sums[f"nan/{t}"]).any()]
    what = [f"loss of task {', '.join(tasks)}"] if tasks else []
    what += ["gradients"] if np.asarray(sums["nan/grads"]).any() else []
    seeds = [int(k) for k in np.flatnonzero(bad)]
    first = int(np.min(sums["nan/first"]))
    raise NonFiniteError(f"non-finite {' and '.join(what)} at step {first} (epoch {epoch}, seed index {seeds}); "
                         f"stopped without saving this epoch, the last good checkpoint is kept; "
                         f"train.nonfinite=\"skip\" skips such steps instead")
