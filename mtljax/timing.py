"""Where a run's wall time goes: named phases of one process, for `summary.json`'s `phases`.

`phase(name)` times a block on the caller's thread and adds it to `name`. Work moved off the
critical path (checkpoint writes, figures, TensorBoard events) is timed the same way on its own
thread, under a name ending in "(background)": those seconds overlap others and are not part of
the sum. What the critical path spent waiting for such work is its own phase ("... wait").
`start` is the time from the process's start (the interpreter's exec) to mtljax's first line.

Standard library only: `import mtljax` stays cheap, and the timer runs before jax is imported.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Iterator

BACKGROUND = " (background)"  # Suffix of the phases timed off the critical path.

_lock = threading.Lock()
_seconds: dict[str, float] = {}
_imports_began: list[float] = []  # When mtljax's first line ran (`mark_start`).
_started_marks: list[bool] = []  # Whether `mark(process_start=True)` was given out.


def process_age() -> float | None:
    """Seconds since this process started (Linux: /proc, 10 ms resolution); None elsewhere."""
    try:
        with open("/proc/self/stat") as f:  # Field 22 (after the parenthesised name): start, in clock ticks.
            started = int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as f:
            return max(float(f.read().split()[0]) - started, 0.0)
    except (OSError, ValueError, IndexError):
        return None


def mark_start() -> None:
    """At mtljax's first line (its `__init__`): the `start` phase, and the clock of `imports`."""
    if not _imports_began:
        _imports_began.append(time.perf_counter())
        age = process_age()
        if age is not None:
            add("start", age)


def imports_done() -> None:
    """At a command's first line: the `imports` phase, from mtljax's first line to here (once)."""
    if _imports_began and "imports" not in _seconds:
        add("imports", time.perf_counter() - _imports_began[0])


def add(name: str, seconds: float) -> None:
    """Adds `seconds` to phase `name` (thread-safe)."""
    with _lock:
        _seconds[name] = _seconds.get(name, 0.0) + seconds


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Times the block (also when it raises) and adds it to phase `name`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        add(name, time.perf_counter() - start)


def seconds() -> dict[str, float]:
    """The phases so far, name -> seconds, in the order they were first timed."""
    with _lock:
        return dict(_seconds)


def mark(process_start: bool = False) -> tuple[dict[str, float], float]:
    """Now, for `report`: the phases so far and the clock; with `process_start`, the process's
    start instead, the first time it is asked for (the process's first run reports every phase,
    `start` and `imports` included; a later run in the same process, only its own)."""
    if process_start and not _started_marks:
        _started_marks.append(True)
        return {}, time.perf_counter() - (process_age() or 0.0)
    return seconds(), time.perf_counter()


def report(since: tuple[dict[str, float], float]) -> dict:
    """`summary.json`'s timing since `since` (a `mark()`): `phases` (name -> seconds), `wall_s`
    (the wall time since then) and `other_s` (wall time in no critical-path phase)."""
    before, clock = since
    phases = {k: v - before.get(k, 0.0) for k, v in seconds().items() if v > before.get(k, 0.0)}
    wall = time.perf_counter() - clock
    critical = sum(v for k, v in phases.items() if not k.endswith(BACKGROUND))
    return {"phases": phases, "wall_s": wall, "other_s": wall - critical}
