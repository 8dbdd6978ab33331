"""The HTML report, rendered by a real headless Chromium (Debian's chromium package)."""

from __future__ import annotations

import pprint
import re
import shutil
import subprocess

import pytest

from mtljax import report, run
from conftest import tiny_config

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=10000"]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is needed for this test: apt-get install chromium (the README's test command does)")
    return path


@pytest.mark.outputs
def test_report_renders_in_headless_chromium(tmp_path, tiny_data_dir, capsys):
    cfg = tiny_config(tiny_data_dir, mtl={"diagnose_every": 1})
    path = tmp_path / "tiny.py"
    path.write_text("CONFIG = " + pprint.pformat(cfg) + "\n")
    root = tmp_path / "runs"
    assert run.main([str(path), "--root", str(root)]) == 0
    assert run.main([str(path), "--root", str(root), "--seeds", "2", "--set", "optimizer.lr=0.003"]) == 0
    runs = sorted((root / "tiny").iterdir())
    out = tmp_path / "report.html"
    assert report.main([*map(str, runs), "-o", str(out)]) == 0
    expected_images = 1 + sum(len(list(r.glob("*.png"))) for r in runs)  # Overlaid curves + each run's figures.
    dom = subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          out.as_uri()], capture_output=True, text=True, timeout=120).stdout
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert f'data-images="{expected_images}"' in body and f'data-decoded="{expected_images}"' in body, body
    assert dom.count("<table class=\"comparison\"") == 1 and dom.count("<table class=\"metrics\"") == 2
    assert "±" in dom  # The seed sweep's mean ± std.
    for name in ("curves", "confusion_digit", "samples", "conflict"):
        assert f'alt="{name}"' in dom
    capsys.readouterr()
    assert report.main([str(tmp_path), "-o", str(tmp_path / "x.html")]) == 2
    assert "not a finished run" in capsys.readouterr().err
