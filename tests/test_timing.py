"""The run's phase timer and its thread for outputs: what summary.json's `timing` is made of."""

from __future__ import annotations

import threading
import time

import pytest

from mtljax import timing
from mtljax.outputs.background import Background


def test_phases_add_up_and_background_ones_stay_apart():
    began = timing.mark()
    with timing.phase("alpha"):
        time.sleep(0.05)
    with timing.phase("alpha"):  # A phase met twice adds up.
        time.sleep(0.05)

    def work() -> None:
        timing.add("gamma" + timing.BACKGROUND, 5.0)  # Off the critical path: not part of the sum.

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    report = timing.report(began)
    assert 0.1 <= report["phases"]["alpha"] < 1.0 and report["phases"]["gamma (background)"] == 5.0
    assert report["wall_s"] >= report["phases"]["alpha"]
    assert report["other_s"] == pytest.approx(report["wall_s"] - report["phases"]["alpha"])
    later = timing.report(timing.mark())  # A later run's report leaves out what came before it.
    assert "alpha" not in later["phases"]


def test_process_age_is_the_time_since_this_process_started(monkeypatch):
    age = timing.process_age()
    assert age is not None and 0 < age < 24 * 3600  # This pytest process started earlier today.
    monkeypatch.setattr(timing, "_started_marks", [])
    assert timing.report(timing.mark(process_start=True))["wall_s"] == pytest.approx(age, abs=0.5)
    # A second run in the same process counts from its own start, not the process's.
    assert timing.report(timing.mark(process_start=True))["wall_s"] < 0.5


@pytest.mark.outputs  # The real Background.submit.
def test_background_jobs_run_in_order_and_wait_raises_their_error():
    done, outputs = [], Background()
    outputs.submit("figures", lambda: (time.sleep(0.05), done.append(1)))
    outputs.submit("figures", done.append, 2)
    outputs.wait()
    assert done == [1, 2]
    outputs.submit("figures", lambda: 1 / 0)
    outputs.submit("figures", done.append, 3)  # Later jobs still run.
    with pytest.raises(ZeroDivisionError):
        outputs.close()
    assert done == [1, 2, 3]
