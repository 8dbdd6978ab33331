"""Every repository path that the docs, experiments, examples, scripts and package name exists:
files move, and the text that points at them must move with them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATH = re.compile(r"\b((?:experiments|benchmarks|docs|examples|tests|mtljax)/[\w/.-]+\.(?:py|md|sh))")


def test_every_named_path_exists():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    missing = sorted({(f, m) for f in files if f.endswith((".py", ".md", ".sh"))
                      for m in PATH.findall((ROOT / f).read_text(errors="ignore")) if not (ROOT / m).exists()})
    assert missing == []
