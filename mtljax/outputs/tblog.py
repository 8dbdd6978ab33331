"""TensorBoard event files of a run (through tensorboardX), beside metrics.jsonl.

`tensorboard --logdir checkpoints/` then shows every run: scalars `<split>/<task>/<metric>`,
`<split>/loss` and `lr` per epoch, and the run's figures as images once it has finished.

The events are regenerated from the whole history each epoch into `<run>/tensorboard/` (a new file
replaces the old one), so a killed and resumed run never shows an epoch twice or misses one.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

TB_DIR = "tensorboard"


@contextlib.contextmanager
def _torch_hidden() -> Iterator[None]:
    """Inside: `import torch` raises ImportError, unless torch is already imported.

    tensorboardX imports torch whenever it is installed (the `bench` extra installs it), only to
    accept torch tensors; mtljax hands it numpy arrays. Importing torch is most of that import's
    cost (over a second), and it would run beside the training of every run, holding the GIL
    (docs/performance.md).
    """
    if "torch" in sys.modules:
        yield
        return
    sys.modules["torch"] = None  # type: ignore[assignment]  # The import system's "not importable".
    try:
        yield
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]


def summary_writer() -> type:
    """tensorboardX's SummaryWriter class, imported without torch (see `_torch_hidden`)."""
    with _torch_hidden():
        from tensorboardX import SummaryWriter

    return SummaryWriter


def _scalars(record: Mapping) -> dict[str, float]:
    """The numbers of one metrics.jsonl record worth a curve (seed means; not per-seed lists)."""
    skip = {"epoch", "seeds"}
    return {k: float(v) for k, v in record.items() if k not in skip and isinstance(v, (int, float))}


def write_events(run_dir: Path, history: Sequence[Mapping], figures: Sequence[Path] = ()) -> Path:
    """Writes the TensorBoard events of `history` (and the PNG `figures`) to `run_dir/tensorboard`,
    replacing earlier ones; returns that directory."""
    from PIL import Image

    SummaryWriter = summary_writer()
    out = Path(run_dir) / TB_DIR
    tmp = Path(run_dir) / f".{TB_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)  # Left by a run killed while writing.
    writer = SummaryWriter(logdir=str(tmp), flush_secs=3600)
    for record in history:
        for tag, value in _scalars(record).items():
            writer.add_scalar(tag, value, global_step=record["epoch"])
    step = history[-1]["epoch"] if history else 0
    for path in figures:
        image = np.asarray(Image.open(path).convert("RGB"))
        writer.add_image(Path(path).stem, image, global_step=step, dataformats="HWC")
    writer.close()
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    return out
