"""Datasets: the train/validation/test splits of a config, as uint8 images and task labels.

A dataset takes a source's items (`data.source`, mtljax/data/sources.py) as they are (`mnist`:
any source's images and label columns) or builds images from them (mtljax/data/constructions.py:
coloured items, two stacked items, MultiMNIST, the 36×36 Multi-* images). The source's train
items are split into training and validation; its test split, or a seeded held-out fraction when
it has none, is the test split. Each split is built on its own, so validation and test images
are never built from training items. A dataset is registered in `DATASETS` with the raw labels
it provides (None: the source's columns), the image shape it makes of the source's, and the
options it owns (config `data.*`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

from mtljax.data import compose, constructions, sources, stream
from mtljax.data.files import DataError, Table
from mtljax.registry import Option, Registry

# Options of every dataset (config `data.*`); a dataset adds its own at registration.
DATA_OPTIONS: dict[str, Option] = {
    "dataset": Option("mnist", "the dataset's registered name ('mnist': the source's items as they are)",
                      choices=lambda: DATASETS.names()),
    "source": Option("mnist", f"where the items and labels come from: {sources.FORMS} (docs/data.md)",
                     check=sources.problem),
    "dir": Option(None, "where MNIST and TFDS data are cached; None: $MTLJAX_DATA_DIR, else ~/.cache/mtljax",
                  nullable=str),
    "image_shape": Option(None, "[H, W, C] of the images the model sees; None: the dataset's for this source "
                          "(filled in when the config is resolved)", nullable=list),
    "val_size": Option(6000, "validation items taken from the source's training items", positive=True),
    "test_fraction": Option(0.2, "a source without a test split: this fraction of its items, drawn with "
                            "data.split_seed, is held out as the test split", positive=True, below_one=True),
    "split_seed": Option(0, "seed of the validation split, fixed apart from `seed`", minimum=0),
    "val_from": Option("random", "'random' (a seeded permutation) or 'first' (the first val_size)",
                       choices=("random", "first")),
    "limit": Option(None, "cap on every split's size, for smoke tests", nullable=int, positive=True),
    "load": Option("auto", "'memory': every split on the device; 'stream': training images read from their "
                   "files as training goes (idx:, folder:, hf: and tfds: sources, dataset 'mnist'); 'auto': "
                   "stream when they would not fit in memory (docs/data.md)", choices=stream.LOAD_MODES),
    "skip_unreadable": Option(False, "folder sources: skip rows whose image cannot be read (counted, printed "
                              "and recorded in the summary) instead of stopping with an error"),
}


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A registered dataset.

    Attributes:
      build: (tables, split name, data config, seed) -> (images N×H×W×C uint8, raw labels); tables
        holds one split of each source the dataset reads (`data.source`, then `second_source`).
      labels: the raw labels it provides (tasks name theirs in `Task.sources`); None: the first
        source's columns, and `digit` for its `label` column.
      shape: the source's item shape H×W×C -> the H×W×C the model sees.
    """

    build: Callable
    labels: tuple[str, ...] | None
    shape: Callable[[tuple[int, int, int]], tuple[int, int, int]]


DATASETS = Registry("dataset")


class Split(NamedTuple):
    """One split: uint8 images N×H×W×C and, per configured task, labels of length N (the task's dtype)."""

    images: np.ndarray
    labels: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.images)


SPLITS = ("train", "val", "test")
DIGIT_CLASSES = 10  # The constructions' labels and the built-in tasks read the `label` column as 0-9.


def _as_is(tables, split: str, data_cfg, seed: int):
    table = tables[0]
    raw = dict(table.columns)
    if "label" in raw:
        raw.setdefault("digit", raw["label"])
    return table.images, raw


def _grey(table: Table) -> tuple[np.ndarray, np.ndarray]:
    """A base's items as greyscale N×H×W and their `label` column, for the constructions."""
    return table.images[..., 0], table.columns["label"]


def _colored(tables, split: str, data_cfg, seed: int):
    return constructions.colored(*_grey(tables[0]), seed)


def _with_sum(built, raw, first: str, second: str):
    """Adds the raw label `sum` (of the two digits) to a two-digit dataset's labels."""
    return built, {**raw, "sum": raw[first].astype(np.float32) + raw[second].astype(np.float32)}


def _two_digit(tables, split: str, data_cfg, seed: int):
    images, labels = _grey(tables[0])
    if split == "train" and data_cfg["compose"] != "host":  # Stacked in the train step (compose.py).
        built, raw = constructions.two_digit_parts(images, labels, data_cfg["train_pairs"], seed)
    else:
        built, raw = constructions.two_digit(images, labels, data_cfg[f"{split}_pairs"], seed)
    return _with_sum(built, raw, "top", "bottom")


def _multimnist(tables, split: str, data_cfg, seed: int):
    return _with_sum(*constructions.multimnist(*_grey(tables[0]), seed), "left", "right")


def _multi36(tables, split: str, data_cfg, seed: int):
    first, second = tables[0], tables[-1]
    built = constructions.multi36(*_grey(first), *_grey(second), data_cfg["per_item"], len(tables) == 1, seed)
    return _with_sum(*built, "left", "right")


def _greyscale(make: Callable[[int, int], tuple[int, int, int]], size: tuple[int, int] | None = None):
    """A shape function for constructions over greyscale items (of one size, when given)."""
    def shape(base):
        if base[2] != 1 or (size and tuple(base[:2]) != size):
            need = f"{size[0]}×{size[1]}×1" if size else "greyscale (H×W×1)"
            raise DataError(f"the construction needs {need} items; the source's are {'×'.join(map(str, base))}")
        return make(base[0], base[1])
    return shape


TWO_DIGIT_OPTIONS = {
    "train_pairs": Option(40000, "two-digit images built for training", positive=True),
    "val_pairs": Option(4000, "two-digit images built for validation", positive=True),
    "test_pairs": Option(4000, "two-digit images built for test", positive=True),
    "compose": Option("host", "'host': training images stacked once on the host; 'step': stacked in the "
                      "train step, each digit augmented on its own; 'repair': as 'step', bottom digits "
                      "re-paired within the batch every step (mtljax/data/compose.py)",
                      choices=compose.COMPOSE_MODES),
}
MULTI36_OPTIONS = {
    "per_item": Option(2, "36×36 images built per item of the first source (Lin et al.'s pickles: 2)", positive=True),
    "second_source": Option(None, "the bottom-right items' source (Multi-(Fashion+MNIST)); None: data.source, "
                            "each image then pairing two different labels", nullable=str, check=sources.problem),
}
DATASETS.register("mnist", Dataset(_as_is, None, lambda base: base))
DATASETS.register("colored", Dataset(_colored, ("digit", "color"), _greyscale(lambda h, w: (h, w, 3))))
DATASETS.register("two_digit", Dataset(_two_digit, ("top", "bottom", "sum"),
                                       _greyscale(lambda h, w: (h + h // 2, w, 1))), TWO_DIGIT_OPTIONS)
DATASETS.register("multimnist", Dataset(_multimnist, ("left", "right", "sum"),
                                        _greyscale(lambda h, w: (28, 28, 1), (28, 28))))
DATASETS.register("multi36", Dataset(_multi36, ("left", "right", "sum"),
                                     _greyscale(lambda h, w: (36, 36, 1), (28, 28))), MULTI36_OPTIONS)


def source_names(data_cfg: Mapping[str, Any]) -> tuple[str, ...]:
    """The sources a dataset reads: `data.source`, and `data.second_source` where it has one."""
    second = data_cfg.get("second_source")
    return (data_cfg["source"], second) if second else (data_cfg["source"],)


def image_shape(data_cfg: Mapping[str, Any]) -> tuple[int, int, int]:
    """The H×W×C of the images the model sees (training parts stacked on device included): the
    resolved config's `data.image_shape`, else the dataset's shape for its source's items."""
    if data_cfg.get("image_shape"):
        return tuple(data_cfg["image_shape"])
    shapes = [DATASETS[data_cfg["dataset"]].shape(sources.base_shape(s, data_cfg)) for s in source_names(data_cfg)]
    if len(set(shapes)) > 1:
        raise DataError(f"data.second_source: its items make {shapes[1]} images, data.source's {shapes[0]}")
    return shapes[0]


def provided_labels(data_cfg: Mapping[str, Any]) -> tuple[str, ...]:
    """The raw labels a config's dataset provides (the source's columns for `mnist`)."""
    fixed = DATASETS[data_cfg["dataset"]].labels
    if fixed is not None:
        return fixed
    columns = sources.columns(data_cfg["source"], data_cfg)
    return (*columns, "digit") if "label" in columns else columns


def split_indices(n: int, val_size: int, val_from: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices into n training items: a seeded random choice, or the first ones."""
    order = np.arange(n) if val_from == "first" else np.random.default_rng(seed).permutation(n)
    return order[val_size:], order[:val_size]
