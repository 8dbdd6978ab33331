"""Data parallel through `jax.jit` and a `Mesh` (no pmap): replicate the state, shard the batch.

With more than one device, the trainer puts state, data and keys on every device (replicated) and
splits each batch's indices over the mesh's `data` axis; XLA partitions the step and inserts the
gradient all-reduce. With one device nothing changes. The same code runs on 1 or N devices.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def data_mesh() -> Mesh | None:
    """A one-axis ("data") mesh over every device, or None on a single device."""
    devices = jax.devices()
    return Mesh(np.array(devices), ("data",)) if len(devices) > 1 else None


def replicate(tree: Any, mesh: Mesh | None) -> Any:
    """`tree` on every device of `mesh` (unchanged without a mesh)."""
    return tree if mesh is None else jax.device_put(tree, NamedSharding(mesh, P()))


def shard_batch(idx: np.ndarray, mesh: Mesh | None) -> Any:
    """Batch indices S×K×B split along B over the `data` axis (unchanged without a mesh)."""
    return idx if mesh is None else jax.device_put(idx, NamedSharding(mesh, P(None, None, "data")))
