"""Training items read from their files as training goes, for data larger than memory (`data.load`).

In memory, a split's uint8 images sit on the device and each train call receives the indices of
its batches (mtljax/train/epoch.py). Streamed, the training images stay in their files
(`LazyImages`: a memory-mapped IDX file, a folder's image files, a Hugging Face or TFDS dataset
read by random access) and each train call receives exactly the items its batches index, read by
grain in background threads while the device trains on the previous call. The batches are the
in-memory path's, in the same order (the epoch's permutation is a function of seed and epoch), so
a streamed run trains bit for bit as an in-memory one, and resumes as exactly: the loop's position
is all the stream needs. Validation and test splits are read into memory.
"""

from __future__ import annotations

import os
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

LOAD_MODES = ("auto", "memory", "stream")
# `data.load: auto` streams when the in-memory path would need more than half the memory available:
# building threshold.py over 534,000 training images (419 MB) from IDX files, it held 1.12 to 1.26
# bytes more per byte of training images at its peak than streamed, in two runs of
# benchmarks/stream.py (docs/data.md); the larger is used.
MEMORY_PER_BYTE = 1.26
AVAILABLE_SHARE = 0.5


class LazyImages:
    """uint8 images N×H×W×C read on demand: `read(rows)` returns the items at those rows of the
    underlying source. Indexing with a slice or an index array gives another LazyImages (no read);
    `np.asarray` reads them all."""

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, read: Callable[[np.ndarray], np.ndarray], item_shape: Sequence[int], rows: np.ndarray):
        self._read, self.item_shape, self.rows = read, tuple(item_shape), np.asarray(rows, np.int64)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.item_shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index) -> "LazyImages":
        """The items at `index` (a slice or an index array), not read yet."""
        return LazyImages(self._read, self.item_shape, self.rows[index])

    def read(self, positions: np.ndarray) -> np.ndarray:
        """The images at `positions` (of this view), as uint8 len(positions)×H×W×C."""
        return np.asarray(self._read(self.rows[np.asarray(positions)]), np.uint8).reshape(-1, *self.item_shape)

    def __array__(self, dtype=None, copy=None):
        out = self.read(np.arange(len(self)))
        return out.astype(dtype) if dtype is not None else out


def available_bytes() -> int:
    """The memory available to this process now: Linux's MemAvailable (else the physical memory),
    and on an accelerator no more than its free memory, where in-memory splits live."""
    import jax

    stats = jax.devices()[0].memory_stats() if jax.default_backend() != "cpu" else None
    device = stats["bytes_limit"] - stats["bytes_in_use"] if stats and "bytes_limit" in stats else None
    host = _host_available()
    return min(host, device) if device is not None else host


def _host_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def should_stream(mode: str, nbytes: int, can_stream: bool) -> bool:
    """Whether to stream the training images (`data.load`): "stream" and "memory" say so; "auto"
    streams a source that can be streamed when it would not fit in memory (see MEMORY_PER_BYTE)."""
    if mode != "auto":
        return mode == "stream"
    return can_stream and MEMORY_PER_BYTE * nbytes > AVAILABLE_SHARE * available_bytes()


def call_items(images: LazyImages, labels: Mapping[str, np.ndarray], idx: np.ndarray) -> tuple[dict, np.ndarray]:
    """One train call's items and the indices that pick its batches from them.

    Args:
      idx: R×K×B indices into the training split (rows of -1: no step).

    Returns:
      {"image": M×H×W×C, task: M labels} with M = R·K·B, and R×K×B indices into those items
      (-1 kept), so that the train call gathers the very batches `idx` gathers from the whole split.
    """
    flat = idx.reshape(-1)
    rows = np.where(flat >= 0, flat, 0)  # Padding rows read item 0, which no step uses.
    items = {"image": images.read(rows), **{t: y[rows] for t, y in labels.items()}}
    local = np.where(flat >= 0, np.arange(len(flat), dtype=idx.dtype), -1).reshape(idx.shape)
    return items, local


def prefetch(calls: Sequence[np.ndarray], images: LazyImages, labels: Mapping[str, np.ndarray],
             threads: int = 2, buffer: int = 4) -> Iterator[tuple[dict, np.ndarray]]:
    """`call_items` of each call's indices, in order, read ahead by grain in `threads` threads
    (`buffer` calls ahead) while the caller trains."""
    import grain  # The `stream` path only: grain is needed where data is streamed.

    dataset = grain.MapDataset.source(list(calls)).map(lambda idx: call_items(images, labels, idx))
    return iter(dataset.to_iter_dataset(grain.ReadOptions(num_threads=threads, prefetch_buffer_size=buffer)))
