"""benchmarks/device_check.sh, checked without a GPU: its parts fit the time it promises, every
file it names exists, and its step-settings table reports the defaults this backend resolves."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
SCRIPT = ROOT / "benchmarks" / "device_check.sh"
BUDGET_S = 480  # "at most 8 minutes on one GPU"


def _parts() -> list[tuple[int, str]]:
    """(limit, the rest of the line) of every `part SECONDS TITLE ...` call, continuations joined."""
    text = SCRIPT.read_text().replace("\\\n", " ")
    return [(int(m[1]), m[2]) for m in re.finditer(r"^part (\d+) (.*)$", text, re.MULTILINE)]


def test_the_parts_fit_the_budget_and_the_shell_parses_it():
    parts = _parts()
    assert len(parts) >= 8
    assert sum(limit for limit, _ in parts) <= BUDGET_S
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_every_named_file_exists():
    paths = [p for _, rest in _parts() for p in re.findall(r"\b((?:benchmarks|experiments|tests)/[\w/]+\.py)", rest)]
    modules = [m.replace(".", "/") + ".py" for _, rest in _parts() for m in re.findall(r"-m (benchmarks\.[\w.]+)", rest)]
    named = set(paths + modules)
    assert {"benchmarks/speed.py", "benchmarks/tables/step_settings.py", "experiments/threshold.py"} <= named
    assert [p for p in named if not (ROOT / p).is_file()] == []


def test_step_settings_marks_what_auto_resolves_to():
    from benchmarks.tables import step_settings
    # On a CPU: the matmul convolution, 10 steps per call, micro-batches of 32 when they divide the batch.
    assert step_settings.auto_settings(128) == ("matmul", 10, 32)
    assert step_settings.auto_settings(48) == ("matmul", 10, 0)


def test_step_settings_times_an_experiment_network():
    """--experiment takes the network, tasks, channels and batch size from an experiment file, and
    refuses images the benchmark's random data cannot stand in for."""
    from benchmarks.tables import step_settings
    name, model, tasks, channels, batch = step_settings.experiment_entry(str(ROOT / "experiments/speedrun.py"))
    assert (name, tasks, channels, batch) == ("speedrun", ["digit"], 1, 256)
    assert model["first_kernel"] == 5 and model["features"] == [24, 32]
    assert step_settings.experiment_entry(str(ROOT / "experiments/colored.py"))[3] == 3
    with pytest.raises(SystemExit) as exit_info:
        step_settings.experiment_entry(str(ROOT / "experiments/two_digit.py"))
    assert exit_info.value.code == 2
