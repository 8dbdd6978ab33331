"""Readers of the two dataset libraries: Hugging Face `datasets` and TensorFlow Datasets.

Both give, per split, one image feature and scalar label features; each becomes a `Table` whose
columns are the scalar features (booleans as 0/1, class labels as their integer). Neither library
is a dependency of mtljax: a source that names one imports it and says how to install it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from mtljax.data.files import DataError, Table
from mtljax.data.stream import LazyImages

SPLIT_NAMES = ("train", "test")  # The splits read; a dataset's own validation split is not used.


def _import(module: str, extra: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise DataError(f"the source needs the package {module.split('.')[0]!r}: pip install -e '.[{extra}]'") from None


def _column(values: list) -> np.ndarray:
    array = np.asarray(values)
    return array.astype(np.int64) if array.dtype == bool else array


# --------------------------------------------------------------------------- Hugging Face datasets


def _hf_dataset(name: str):
    """A DatasetDict: saved to disk (`save_to_disk`), parquet files, or a name on the Hub."""
    datasets = _import("datasets", "hf")
    path = Path(name).expanduser()
    try:
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            loaded = datasets.load_from_disk(str(path))
        elif path.suffix == ".parquet" or (path.is_dir() and any(path.glob("**/*.parquet"))):
            files = [path] if path.is_file() else sorted(path.glob("**/*.parquet"))
            by_split = {s: [str(f) for f in files if f.name.startswith(s) or f.parent.name == s] for s in SPLIT_NAMES}
            data_files = {s: f for s, f in by_split.items() if f} or {"train": [str(f) for f in files]}
            loaded = datasets.load_dataset("parquet", data_files=data_files)
        else:
            loaded = datasets.load_dataset(name)
    except Exception as exc:  # noqa: BLE001 - the library's many errors: one line naming the source.
        raise DataError(f"hf:{name}: cannot load: {type(exc).__name__}: {exc}") from None
    return loaded if isinstance(loaded, Mapping) or hasattr(loaded, "keys") else {"train": loaded}


def read_hf(name: str) -> dict[str, Table]:
    """A Hugging Face dataset's train and test splits: its `Image` (or image-shaped array) column
    and every scalar column."""
    datasets = _import("datasets", "hf")
    loaded = _hf_dataset(name)
    if "train" not in loaded:
        raise DataError(f"hf:{name}: no train split (splits: {', '.join(loaded)})")
    tables = {}
    for split in [s for s in SPLIT_NAMES if s in loaded]:
        ds = loaded[split]
        image_keys = [k for k, f in ds.features.items() if isinstance(f, datasets.Image)
                      or (isinstance(f, (datasets.Array2D, datasets.Array3D)))]
        if len(image_keys) != 1:
            raise DataError(f"hf:{name}: expected one image column in split {split}, found "
                            f"{', '.join(image_keys) or 'none'} (features: {', '.join(ds.features)})")
        scalar = [k for k, f in ds.features.items() if isinstance(f, (datasets.ClassLabel, datasets.Value))]
        columns = {k: _column(list(ds[k])) for k in scalar}  # Arrow columns: no image is decoded.
        tables[split] = Table(lazy_images(lambda rows, ds=ds, key=image_keys[0]: ds[rows.tolist()][key],
                                          lambda: ds[0][image_keys[0]], len(ds), f"hf:{name} {split}"), columns)
    return tables


def lazy_images(read_items: Callable[[np.ndarray], Iterable[Any]], first: Callable[[], Any], n: int,
                origin: str) -> LazyImages:
    """A dataset's images, read by `read_items(rows)` (arrays or PIL images) when asked for; every
    image must have the first one's shape."""
    shape = _pixels(first()).shape

    def read(rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), *shape), np.uint8)
        for k, (row, item) in enumerate(zip(rows, read_items(rows))):
            out[k] = _checked(item, shape, f"{origin}[{row}]")
        return out

    return LazyImages(read, shape, np.arange(n))


def _checked(image: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
    """One image as uint8 H×W×C, which must be of `shape` (the dataset's first image's)."""
    pixels = _pixels(image)
    if pixels.shape != shape:
        raise DataError(f"{where}: image of shape {pixels.shape}, the first {shape}; all images must have one shape")
    return pixels


def _pixels(image: Any) -> np.ndarray:
    pixels = np.asarray(image)
    pixels = pixels.astype(np.uint8) if pixels.dtype == bool else pixels
    if pixels.dtype != np.uint8:
        raise DataError(f"images of {pixels.dtype}, expected uint8")
    return pixels[..., None] if pixels.ndim == 2 else pixels


# --------------------------------------------------------------------------- TensorFlow Datasets


def _flat_scalars(features, prefix: str = "") -> tuple[list[str], str | None]:
    """The scalar leaf features of a TFDS FeaturesDict ('attributes/Smiling'), and its image key."""
    tfds = _import("tensorflow_datasets", "tfds")
    scalars, image = [], None
    for key, feature in features.items():
        path = f"{prefix}{key}"
        if isinstance(feature, tfds.features.FeaturesDict):
            inner, inner_image = _flat_scalars(feature, f"{path}/")
            scalars += inner
            image = image or inner_image
        elif isinstance(feature, tfds.features.Image) and image is None:
            image = path
        elif getattr(feature, "shape", None) == ():
            scalars.append(path)
    return scalars, image


def _leaf(example: Mapping[str, Any], path: str):
    for part in path.split("/"):
        example = example[part]
    return example


def read_tfds(name: str, data_dir: Path, lazy: Callable[[int], bool] = lambda nbytes: False) -> dict[str, Table]:
    """A TFDS dataset's train and test splits by random access (`tfds.data_source`, ArrayRecord
    files prepared under `data_dir`): its image feature and scalar features, nested ones named
    'outer/inner'. The training images are read when trained on (`LazyImages`) when
    `lazy(their bytes)` says so, else all at once."""
    tfds = _import("tensorflow_datasets", "tfds")
    try:
        builder = tfds.builder(name, data_dir=str(data_dir))
        scalars, image_key = _flat_scalars(builder.info.features)
        # A prepared dataset lists its splits; tfds.testing.mock_data lists none and serves any.
        splits = [s for s in SPLIT_NAMES if s in builder.info.splits or not builder.info.splits]
        sources = {s: tfds.data_source(name, split=s, data_dir=str(data_dir)) for s in splits}
    except Exception as exc:  # noqa: BLE001 - not registered, not prepared: one line naming it.
        raise DataError(f"tfds:{name}: cannot load from {data_dir} (prepare it as ArrayRecord there, "
                        f"docs/data.md): {type(exc).__name__}: {exc}") from None
    if image_key is None or "train" not in sources:
        raise DataError(f"tfds:{name}: needs an image feature and a train split")
    tables = {}
    for split, source in sources.items():
        origin = f"tfds:{name} {split}"
        if len(source) == 0:
            raise DataError(f"{origin}: no examples")
        images = lazy_images(lambda rows, s=source: (_leaf(s[int(r)], image_key) for r in rows),
                             lambda s=source: _leaf(s[0], image_key), len(source), origin)
        streamed = split == "train" and lazy(images.nbytes)
        # One pass: TFDS decodes each example whole, so the labels (and, in memory, the images) are read together.
        columns, pixels = {k: [] for k in scalars}, []
        for i in range(len(source)):
            example = source[i]
            for k in scalars:
                columns[k].append(_leaf(example, k))
            if not streamed:
                pixels.append(_checked(_leaf(example, image_key), images.item_shape, f"{origin}[{i}]"))
        tables[split] = Table(images if streamed else np.stack(pixels), {k: _column(v) for k, v in columns.items()})
    return tables
