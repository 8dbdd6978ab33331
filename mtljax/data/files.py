"""Readers of users' image files: IDX, Keras-style npz and a folder of images with a labels.csv.

Each reader returns, per split it finds, a `Table`: uint8 images N×H×W×C, named label columns of
length N, and where each item came from (for error messages). Broken files raise `DataError` with
one line that names the file and the row or key; nothing is dropped silently.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from mtljax.data.stream import LazyImages


class DataError(RuntimeError):
    """A data source cannot be found, read or verified; the message names the file (and row or key)."""


class Table(NamedTuple):
    """One split of a source.

    Attributes:
      images: N×H×W×C uint8.
      columns: label column name -> array of length N (integers, floats or strings).
      rows: each item's position in the source's split (None: 0..N-1), kept through `take`.
      locate: a position -> where that item is written ("labels.csv row 7"), for error messages.
    """

    images: np.ndarray
    columns: dict[str, np.ndarray]
    rows: np.ndarray | None = None
    locate: Callable[[int], str] | None = None

    def __len__(self) -> int:
        return len(self.images)

    def _rows(self) -> np.ndarray:
        return np.arange(len(self.images)) if self.rows is None else self.rows

    def take(self, index: np.ndarray) -> "Table":
        """The items at `index`, in that order."""
        columns = {k: v[index] for k, v in self.columns.items()}
        return Table(self.images[index], columns, self._rows()[index], self.locate)

    def head(self, n: int | None) -> "Table":
        """The first n items (all when n is None)."""
        rows = None if self.rows is None else self.rows[:n]
        return Table(self.images[:n], {k: v[:n] for k, v in self.columns.items()}, rows, self.locate)

    def origin(self, i: int, fallback: str) -> str:
        """Where item i is written, or `fallback` and its position when the source does not say."""
        row = int(self._rows()[i])
        return self.locate(row) if self.locate is not None else f"{fallback} item {row}"


def as_images(array: np.ndarray, origin: str) -> np.ndarray:
    """N×H×W or N×H×W×C uint8 images as N×H×W×C.

    Raises:
      DataError: not 3 or 4 dimensions, or not uint8.
    """
    if array.ndim not in (3, 4):
        raise DataError(f"{origin}: expected images N×H×W or N×H×W×C, got shape {array.shape}")
    if array.dtype != np.uint8:
        raise DataError(f"{origin}: expected uint8 pixels, got {array.dtype}")
    return array[..., None] if array.ndim == 3 else array


# --------------------------------------------------------------------------- IDX

IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}  # Unsigned bytes, 3 (images) or 1 (labels) dimensions.


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with `ndim` dimensions (plain or .gz).

    Raises:
      DataError: unreadable, wrong magic number (another type or rank), or truncated.
    """
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    shape = _idx_shape(raw, path, ndim, len(raw))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _idx_shape(head: bytes, path: Path, ndim: int, size: int) -> tuple[int, ...]:
    """The shape an IDX file's header (`head`, its first bytes) declares, checked against its
    magic number and its `size` in bytes.

    Raises:
      DataError: the wrong magic number (another type or rank), or fewer bytes than the shape needs.
    """
    magic = int.from_bytes(head[0:4], "big") if len(head) >= 4 else None
    if magic != IDX_MAGIC[ndim]:
        found = "none" if magic is None else f"0x{magic:08x}"
        raise DataError(f"{path}: wrong magic number {found}; an IDX file of unsigned bytes with {ndim} "
                        f"dimension{'s' * (ndim > 1)} starts with 0x{IDX_MAGIC[ndim]:08x}")
    shape = tuple(int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if size - 4 - 4 * ndim != int(np.prod(shape)):
        raise DataError(f"{path}: truncated: {max(0, size - 4 - 4 * ndim)} bytes for shape {shape}")
    return shape


def read_idx_images(path: Path) -> np.ndarray | LazyImages:
    """An IDX file of images as N×H×W×1: memory-mapped (`LazyImages`, read as needed) when plain,
    read whole when gzipped (a compressed file has no random access).

    Raises:
      DataError: as `read_idx`.
    """
    if path.suffix == ".gz":
        return read_idx(path, 3)[..., None]
    try:
        with open(path, "rb") as f:
            shape = _idx_shape(f.read(16), path, 3, path.stat().st_size)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    pixels = np.memmap(path, np.uint8, "r", offset=16, shape=shape)
    return LazyImages(lambda rows: pixels[rows], (*shape[1:], 1), np.arange(shape[0]))


# The file names of each split's (images, labels): MNIST, Fashion-MNIST and KMNIST name the test
# split t10k, EMNIST names it test and puts its own prefix before (emnist-balanced-test-...).
IDX_SUFFIXES = {"train": (("train-images-idx3-ubyte",), ("train-labels-idx1-ubyte",)),
                "test": (("t10k-images-idx3-ubyte", "test-images-idx3-ubyte"),
                         ("t10k-labels-idx1-ubyte", "test-labels-idx1-ubyte"))}


def _find_idx(directory: Path, suffixes: tuple[str, ...]) -> Path | None:
    """The one file of `directory` whose name (less .gz) ends with one of `suffixes`, or None."""
    found = sorted(p for p in directory.iterdir() if p.name.removesuffix(".gz").endswith(suffixes))
    if len(found) > 1:
        raise DataError(f"{directory}: several files end with {suffixes[0]}: {', '.join(p.name for p in found)}")
    return found[0] if found else None


def read_idx_dir(directory: Path) -> dict[str, Table]:
    """The train (and, when present, test) split of a directory of IDX files.

    Raises:
      DataError: no such directory, the train files missing, a file broken, or images and
        labels of different lengths.
    """
    if not directory.is_dir():
        raise DataError(f"{directory}: no such directory (data.source idx:DIR)")
    tables = {}
    for split, (image_names, label_names) in IDX_SUFFIXES.items():
        image_path, label_path = _find_idx(directory, image_names), _find_idx(directory, label_names)
        if image_path is None and label_path is None and split == "test":
            continue
        if image_path is None or label_path is None:
            missing = image_names if image_path is None else label_names
            raise DataError(f"{directory}: no {split} file *{' or *'.join(missing)} (optionally .gz)")
        images, labels = read_idx_images(image_path), read_idx(label_path, 1)
        if len(images) != len(labels):
            raise DataError(f"{label_path}: {len(labels)} labels for the {len(images)} images of {image_path.name}")
        tables[split] = Table(images, {"label": labels}, locate=lambda i, f=label_path: f"{f} item {i}")
    return tables


# --------------------------------------------------------------------------- npz (Keras's layout)


def read_npz(path: Path) -> dict[str, Table]:
    """Keras's npz layout: `x_train`, `y_train` (the column `label`), `x_test`, `y_test` (optional
    together), and `y_<split>_<column>` for further label columns.

    Raises:
      DataError: unreadable, `x_train` missing, arrays of a split of different lengths, or a
        column in one split only.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read as npz: {exc}") from None
    if "x_train" not in arrays:
        raise DataError(f"{path}: no array x_train (keys: {', '.join(sorted(arrays)) or 'none'})")
    tables = {}
    for split in ("train", "test"):
        if f"x_{split}" not in arrays:
            continue
        images = as_images(arrays[f"x_{split}"], f"{path} x_{split}")
        columns = {("label" if key == f"y_{split}" else key[len(f"y_{split}_"):]): value
                   for key, value in arrays.items() if key == f"y_{split}" or key.startswith(f"y_{split}_")}
        for key, value in columns.items():
            name = f"y_{split}" + ("" if key == "label" else f"_{key}")
            if value.ndim != 1 or len(value) != len(images):
                raise DataError(f"{path}: {name} has shape {value.shape}, x_{split} {len(images)} images")
        tables[split] = Table(images, columns, locate=lambda i, s=split: f"{path} y_{s}[{i}]")
    if "test" in tables and set(tables["test"].columns) != set(tables["train"].columns):
        raise DataError(f"{path}: label columns differ between train ({', '.join(sorted(tables['train'].columns))}) "
                        f"and test ({', '.join(sorted(tables['test'].columns))})")
    return tables


# --------------------------------------------------------------------------- a folder with labels.csv

LABELS_FILE = "labels.csv"


def typed_column(values: list[str], origin: str, rows: list[int]) -> np.ndarray:
    """CSV strings as int64 when all are integers, else float64 when all are numbers, else strings.

    Raises:
      DataError: an empty cell (missing label), naming its row.
    """
    for value, row in zip(values, rows):
        if value.strip() == "":
            raise DataError(f"{origin} row {row}: empty label")
    for kind in (int, float):
        try:
            return np.array([kind(v) for v in values], dtype=np.int64 if kind is int else np.float64)
        except ValueError:
            pass
    return np.array([v.strip() for v in values])


def _read_rows(csv_path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with open(csv_path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{csv_path}: cannot read: {exc}") from None
    if "file" not in header:
        raise DataError(f"{csv_path}: no 'file' column (columns: {', '.join(header) or 'none'})")
    for k, row in enumerate(rows):
        if None in row or any(v is None for v in row.values()):
            raise DataError(f"{csv_path} row {k + 2}: {len(header)} columns expected")
    return header, rows


def _load_image(path: Path) -> np.ndarray:
    """One image file as H×W×C uint8: greyscale (modes 1, L) with one channel, else RGB."""
    from PIL import Image  # The only reader of image files; imported where it is needed.

    with Image.open(path) as image:
        image = image.convert("L" if image.mode in ("1", "L") else "RGB")
        pixels = np.asarray(image, dtype=np.uint8)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _probe(path: Path) -> tuple[int, int, int]:
    """An image file's H×W×C as `_load_image` would give it, from its header alone."""
    from PIL import Image

    with Image.open(path) as image:
        return image.height, image.width, 1 if image.mode in ("1", "L") else 3


def _folder_images(directory: Path, csv_path: Path, files: list[str], csv_rows: np.ndarray, shape) -> LazyImages:
    """The folder's images at CSV rows `csv_rows`, read from their files when asked for."""
    def read(positions: np.ndarray) -> np.ndarray:
        out = np.empty((len(positions), *shape), np.uint8)
        for k, i in enumerate(positions):
            try:
                out[k] = _load_image(directory / files[i])
            except Exception as exc:  # noqa: BLE001 - found broken after its header was read.
                raise DataError(f"{csv_path} row {csv_rows[i]}: cannot read image {files[i]!r}: "
                                f"{type(exc).__name__}") from None
        return out

    return LazyImages(read, shape, np.arange(len(files)))


def _probe_rows(directory: Path, csv_path: Path, rows: list[dict], skip_unreadable: bool):
    """(the indices of the rows whose image reads, their one shape, the rows skipped as unreadable)."""
    shapes, kept, skipped = [], [], []
    for k, row in enumerate(rows):
        where = f"{csv_path} row {k + 2}"
        try:
            shape = _probe(directory / row["file"])
        except Exception as exc:  # noqa: BLE001 - missing, unreadable or not an image: one line either way.
            if not skip_unreadable:
                raise DataError(f"{where}: cannot read image {row['file']!r}: {type(exc).__name__}") from None
            skipped.append(f"{where} ({row['file']})")
            continue
        if shapes and shape != shapes[0]:
            raise DataError(f"{where}: image {row['file']!r} is {'×'.join(map(str, shape))}, the first "
                            f"image {rows[kept[0]]['file']!r} {'×'.join(map(str, shapes[0]))}; "
                            f"all images must have one shape")
        shapes.append(shape)
        kept.append(k)
    return kept, shapes[0] if shapes else None, skipped


def read_folder(directory: Path, skip_unreadable: bool = False) -> tuple[dict[str, Table], list[str]]:
    """Image files listed in `<directory>/labels.csv`: a `file` column (paths relative to the
    directory), one column per label, and optionally `split` (train or test). Each file's header is
    read here; its pixels when the images are read (`LazyImages`: all at once in memory, or a
    batch at a time when streamed).

    Returns:
      the tables by split, and the rows skipped as unreadable (only when `skip_unreadable`).

    Raises:
      DataError: the CSV missing or malformed, a row naming a missing or unreadable image (unless
        skipped), images of different shapes, a split other than train or test, an empty label.
    """
    csv_path = directory / LABELS_FILE
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: not found (data.source folder:DIR needs DIR/{LABELS_FILE})")
    header, rows = _read_rows(csv_path)
    kept, shape, skipped = _probe_rows(directory, csv_path, rows, skip_unreadable)
    if not kept:
        raise DataError(f"{csv_path}: no readable image")
    splits = np.array([rows[k].get("split", "train").strip() or "train" for k in kept])
    for k, split in zip(kept, splits):
        if split not in ("train", "test"):
            raise DataError(f"{csv_path} row {k + 2}: split {split!r}; expected train or test")
    label_names = [h for h in header if h not in ("file", "split")]
    columns = {h: typed_column([rows[k][h] for k in kept], str(csv_path), [k + 2 for k in kept]) for h in label_names}
    csv_rows = np.array(kept) + 2  # Row 1 is the header.
    images = _folder_images(directory, csv_path, [rows[k]["file"] for k in kept], csv_rows, shape)
    tables = {}
    for split in ("train", "test"):
        index = np.flatnonzero(splits == split)
        if len(index):
            tables[split] = Table(images[index], {h: v[index] for h, v in columns.items()}, csv_rows[index],
                                  lambda row: f"{csv_path} row {row} ({rows[row - 2]['file']})")
    if "train" not in tables:
        raise DataError(f"{csv_path}: no row of split train")
    return tables, skipped
