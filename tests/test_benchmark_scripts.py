"""Every script under benchmarks/ answers --help: it imports (no path insertions, no test code)
and parses its arguments. The Python ones run in one child process, so the environment variables
some set before importing JAX stay there."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HELPERS = {"benchmarks.common", "benchmarks.torch_models", "benchmarks.torch_architectures"}  # Imported by the scripts, not run.
SCRIPTS = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / "benchmarks").rglob("*.py")
                 if p.stem != "__init__" and ".".join(p.relative_to(ROOT).with_suffix("").parts) not in HELPERS)
NEEDS_TORCH = {"benchmarks.tables.torch_threshold", "benchmarks.tables.torch_speedrun"}
DRIVER = """
import contextlib, io, json, runpy, sys
out = {}
for name in sys.argv[1:]:
    sys.argv = [name, "--help"]
    text = io.StringIO()
    try:
        with contextlib.redirect_stdout(text):
            runpy.run_module(name, run_name="__main__")
        out[name] = "returned without printing help"
    except SystemExit as exc:
        out[name] = "ok" if exc.code in (0, None) and "usage:" in text.getvalue() else f"exit {exc.code}"
    except Exception as exc:
        out[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def test_there_are_scripts_in_both_rooms():
    assert "benchmarks.speed" in SCRIPTS and any(s.startswith("benchmarks.tables.") for s in SCRIPTS)


def test_every_python_script_answers_help():
    torch = importlib.util.find_spec("torch") is not None  # The optional `bench` extra.
    names = [s for s in SCRIPTS if torch or s not in NEEDS_TORCH]
    done = subprocess.run([sys.executable, "-c", DRIVER, *names], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert {name: r for name, r in results.items() if r != "ok"} == {}
    assert set(results) == set(names)


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "benchmarks").glob("*.sh")))
def test_every_shell_script_parses_and_answers_help(script):
    path = ROOT / "benchmarks" / script
    subprocess.run(["bash", "-n", str(path)], check=True)
    # --help must come first in the script: check that before running it.
    assert re.search(r'^\[\[ "\$\{1:-\}" == "--help" \]\]', path.read_text(), re.MULTILINE), f"{script}: no --help"
    done = subprocess.run(["bash", str(path), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "usage" in done.stdout.lower(), done.stdout + done.stderr
