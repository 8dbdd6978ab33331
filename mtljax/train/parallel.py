"""Data parallel through `jax.jit` and a `Mesh` (no pmap), on one host or many.

With more than one device, the trainer puts state, data and keys on every device (replicated) and
splits each batch's indices over the mesh's `data` axis; XLA partitions the step and inserts the
gradient all-reduce. With one device nothing changes. The same code runs on 1 or N devices.

Multi-host: every process runs the same command with
`JAX_COORDINATOR_ADDRESS=host:port JAX_NUM_PROCESSES=N JAX_PROCESS_ID=i` set; `initialize_from_env`
then calls `jax.distributed.initialize` and the mesh spans every process's devices. Each process
builds only its own devices' slices of every global array (`jax.make_array_from_callback`): its
part of each batch's indices, which it gathers from its own copy of the (small, uint8) dataset.
Only process 0 writes logs, plots and JSON files; Orbax checkpoints are written by all together.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

ENV_VARS = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def deterministic_gpu_kernels() -> None:
    """Asks XLA for deterministic GPU kernels (`--xla_gpu_deterministic_ops=true`) unless $XLA_FLAGS
    already sets that flag. Must run before anything touches a device; changes nothing on CPUs.

    Reruns and resumes are bit-exact only if a step is a function of its inputs. On an NVIDIA H200
    with XLA's defaults, two identical train steps gave different kernel gradients (accumulated
    in a varying order). `XLA_FLAGS=--xla_gpu_deterministic_ops=false` trades this for speed.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_gpu_deterministic_ops" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_gpu_deterministic_ops=true".strip()


def initialize_from_env() -> bool:
    """Joins a multi-process run when JAX_COORDINATOR_ADDRESS is set; returns whether it did.

    Raises:
      ValueError: the address is set but JAX_NUM_PROCESSES or JAX_PROCESS_ID is missing or not
        an integer.
    """
    if not os.environ.get(ENV_VARS[0]):
        return False
    try:
        count, index = int(os.environ[ENV_VARS[1]]), int(os.environ[ENV_VARS[2]])
    except (KeyError, ValueError):
        raise ValueError(f"multi-process run: set {', '.join(ENV_VARS)} (the last two integers)") from None
    jax.distributed.initialize(os.environ[ENV_VARS[0]], num_processes=count, process_id=index)
    return True


def is_primary() -> bool:
    """Whether this process writes the run's files (process 0; always true on one process)."""
    return jax.process_index() == 0


def broadcast_text(text: str, size: int = 1024) -> str:
    """Process 0's `text` on every process (e.g. the run directory it created)."""
    if jax.process_count() == 1:
        return text
    raw = np.zeros(size, np.uint8)
    encoded = text.encode()[:size]
    raw[:len(encoded)] = np.frombuffer(encoded, np.uint8)
    raw = np.asarray(multihost_utils.broadcast_one_to_all(raw))
    return raw.tobytes().rstrip(b"\0").decode()


def data_mesh() -> Mesh | None:
    """A one-axis ("data") mesh over every device of every process, or None on a single device."""
    devices = jax.devices()
    return Mesh(np.array(devices), ("data",)) if len(devices) > 1 else None


def _global_array(leaf: Any, sharding: NamedSharding) -> jax.Array:
    """A global array of `sharding` from a value every process holds in full; each process
    builds only the shards of its own devices (`jax.device_put` refuses other processes' devices)."""
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):  # Typed keys travel as their raw data.
        return jax.random.wrap_key_data(_global_array(jax.random.key_data(leaf), sharding),
                                        impl=jax.random.key_impl(leaf))
    host = np.asarray(leaf)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def replicate(tree: Any, mesh: Mesh | None) -> Any:
    """`tree` on every device of `mesh` (unchanged without a mesh)."""
    if mesh is None:
        return tree
    sharding = NamedSharding(mesh, P())
    return jax.tree.map(lambda leaf: _global_array(leaf, sharding), tree)


def shard_batch(idx: np.ndarray, mesh: Mesh | None) -> Any:
    """Batch indices S×K×B split along B over the `data` axis (unchanged without a mesh)."""
    return idx if mesh is None else _global_array(idx, NamedSharding(mesh, P(None, None, "data")))


def host_value(tree: Any) -> Any:
    """NumPy copies of (fully replicated) arrays, read from this process's own devices."""
    return jax.tree.map(lambda a: np.asarray(a.addressable_data(0)) if isinstance(a, jax.Array) else a, tree)


def over_replicas(fn: Callable, in_axes: tuple, mode: str = "vmap") -> Callable:
    """`fn` over the leading replica axis (seeds × sweep points) of the arguments whose axis is 0.

    Args:
      fn: a function of one replica's arguments.
      in_axes: 0 for an argument with a leading replica axis, None for one shared by all.
      mode: "vmap" (`jax.vmap`: one batched program) or "loop" (`lax.map`: the replicas one after
        another inside one program, each running `fn` unbatched; on XLA:CPU this ran each
        replica at a plain run's speed, where vmap was slower per replica).

    A leading replica axis of size 1 is squeezed off and put back instead, in either mode: on
    XLA:CPU the vmapped size-1 axis led every array, and the compiled step ran slower (it
    transposed im2col patches it otherwise fed to the matmul directly).
    """
    if mode not in ("vmap", "loop"):
        raise ValueError(f"replica mode must be 'vmap' or 'loop', got {mode!r}")
    mapped = jax.vmap(fn, in_axes=in_axes)
    mapped_args = [k for k, ax in enumerate(in_axes) if ax == 0]

    def looped(*args):
        def one(replica_args):
            full = list(args)
            for k, value in zip(mapped_args, replica_args):
                full[k] = value
            return fn(*full)

        return jax.lax.map(one, [args[k] for k in mapped_args])

    def call(*args):
        sizes = {jax.tree.leaves(a)[0].shape[0] for a, ax in zip(args, in_axes) if ax == 0 and jax.tree.leaves(a)}
        if sizes != {1}:
            return mapped(*args) if mode == "vmap" else looped(*args)
        squeezed = [a if ax is None else jax.tree.map(lambda v: v[0], a) for a, ax in zip(args, in_axes)]
        return jax.tree.map(lambda v: v[None], fn(*squeezed))

    return call
