"""A run's figures and TensorBoard events, written on a thread of their own.

They are made while the run goes on (the events of each epoch while the next one trains; the
learning curves while the test split is evaluated), in the order they were queued, by one worker.
`wait()` returns when every queued job has finished and raises the first one's error, so the
command still returns only once every file it promised exists. Orbax's and XLA's threads release
the GIL while they work, so the worker costs the critical path little (docs/performance.md).
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, Callable

from mtljax import timing


class Background:
    """One worker thread for a run's output files; every job is timed as `<phase> (background)`."""

    def __init__(self):
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._jobs: list[concurrent.futures.Future] = []

    def submit(self, phase: str, fn: Callable[..., Any], *args: Any) -> None:
        """Queues `fn(*args)` after the jobs queued before it; its time counts to `phase`."""
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="outputs")

        def job() -> None:
            with timing.phase(phase + timing.BACKGROUND):
                fn(*args)

        self._jobs.append(self._pool.submit(job))

    def wait(self) -> None:
        """Returns once every queued job is done; raises the first failed job's error."""
        jobs, self._jobs = self._jobs, []
        with timing.phase("outputs wait"):
            for job in jobs:
                job.result()

    def close(self) -> None:
        """Waits for the queued jobs (raising their error) and ends the worker."""
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
