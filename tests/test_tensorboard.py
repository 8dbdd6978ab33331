"""TensorBoard event files: written per run, readable by TensorBoard's own event reader."""

from __future__ import annotations

import pprint
import sys

import pytest

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mtljax import run
from mtljax.outputs import tblog
from conftest import tiny_config


@pytest.mark.outputs
def test_run_writes_readable_events(tmp_path, tiny_data_dir):
    path = tmp_path / "tiny.py"
    path.write_text("CONFIG = " + pprint.pformat(tiny_config(tiny_data_dir)) + "\n")
    assert run.main([str(path), "--root", str(tmp_path / "runs")]) == 0
    run_dir = next((tmp_path / "runs" / "tiny").iterdir())
    events = list((run_dir / tblog.TB_DIR).glob("events.out.tfevents.*"))
    assert len(events) == 1  # Regenerated, never appended to.
    acc = EventAccumulator(str(run_dir / tblog.TB_DIR), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    for tag in ("val/digit/accuracy", "train/parity/loss", "val/loss", "lr"):
        assert tag in tags["scalars"], tag
        assert [e.step for e in acc.Scalars(tag)] == [1, 2]
    assert {"curves", "samples", "confusion_digit"} <= set(tags["images"])
    image = acc.Images("curves")[0]
    assert image.width > 100 and image.encoded_image_string.startswith(b"\x89PNG")


def test_summary_writer_imports_without_torch(monkeypatch):
    """tensorboardX is imported with torch hidden (it imports torch, ~0.9 s, only to accept torch
    tensors); afterwards torch is importable again, and an imported torch is left alone."""
    for name in [m for m in sys.modules if m == "tensorboardX" or m.startswith("tensorboardX.")]:
        monkeypatch.delitem(sys.modules, name)
    had_torch = "torch" in sys.modules
    writer = tblog.summary_writer()
    assert writer.__name__ == "SummaryWriter"
    assert ("torch" in sys.modules) == had_torch and sys.modules.get("torch", 0) is not None
    with tblog._torch_hidden():
        if had_torch:
            import torch  # noqa: F401 - already imported: left as it is.
        else:
            with pytest.raises(ImportError):
                import torch  # noqa: F401
    assert "torch" not in sys.modules or sys.modules["torch"] is not None
