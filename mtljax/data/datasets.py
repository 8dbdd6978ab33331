"""Datasets: the train/validation/test splits of a config, as uint8 images and task labels.

Every dataset starts from MNIST's three splits (training minus validation, validation, test) and
builds its images and raw labels from each (mtljax/data/constructions.py), so validation and test
images are never built from training digits. A dataset is registered in `DATASETS` with the raw
labels it provides, the image shape the model sees and the options it owns (config `data.*`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

from mtljax import tasks
from mtljax.data import compose, constructions, mnist
from mtljax.registry import Option, Registry

# Options of every dataset (config `data.*`); a dataset adds its own at registration.
DATA_OPTIONS: dict[str, Option] = {
    "dataset": Option("mnist", "the dataset's registered name", choices=lambda: DATASETS.names()),
    "dir": Option(None, "where MNIST is cached; None: $MTLJAX_DATA_DIR, else ~/.cache/mtljax", nullable=str),
    "source": Option("auto", "where MNIST comes from", choices=lambda: ("auto", *mnist.SOURCES)),
    "val_size": Option(6000, "validation images taken from the 60k training images", positive=True),
    "split_seed": Option(0, "seed of the validation split, fixed apart from `seed`", minimum=0),
    "val_from": Option("random", "'random' (a seeded permutation) or 'first' (the first val_size)",
                       choices=("random", "first")),
    "limit": Option(None, "cap on every split's size, for smoke tests", nullable=int, positive=True),
}


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A registered dataset.

    Attributes:
      build: (images, labels, split name, data config, seed) -> (images N×H×W×C uint8, raw labels).
      labels: the raw labels it provides (tasks name theirs in `Task.sources`).
      image_shape: the H×W×C the model sees.
    """

    build: Callable
    labels: tuple[str, ...]
    image_shape: tuple[int, int, int]


DATASETS = Registry("dataset")


class Split(NamedTuple):
    """One split: uint8 images N×H×W×C and, per configured task, labels of length N (the task's dtype)."""

    images: np.ndarray
    labels: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.images)


SPLITS = ("train", "val", "test")


def _mnist(images, labels, split: str, data_cfg, seed: int):
    return images[..., None], {"digit": labels}


def _with_sum(built, raw, first: str, second: str):
    """Adds the raw label `sum` (of the two digits) to a two-digit dataset's labels."""
    return built, {**raw, "sum": raw[first].astype(np.float32) + raw[second].astype(np.float32)}


def _colored(images, labels, split: str, data_cfg, seed: int):
    return constructions.colored(images, labels, seed)


def _two_digit(images, labels, split: str, data_cfg, seed: int):
    if split == "train" and data_cfg["compose"] != "host":  # Stacked in the train step (compose.py).
        built, raw = constructions.two_digit_parts(images, labels, data_cfg["train_pairs"], seed)
    else:
        built, raw = constructions.two_digit(images, labels, data_cfg[f"{split}_pairs"], seed)
    return _with_sum(built, raw, "top", "bottom")


def _multimnist(images, labels, split: str, data_cfg, seed: int):
    return _with_sum(*constructions.multimnist(images, labels, seed), "left", "right")


TWO_DIGIT_OPTIONS = {
    "train_pairs": Option(40000, "two-digit images built for training", positive=True),
    "val_pairs": Option(4000, "two-digit images built for validation", positive=True),
    "test_pairs": Option(4000, "two-digit images built for test", positive=True),
    "compose": Option("host", "'host': training images stacked once on the host; 'step': stacked in the "
                      "train step, each digit augmented on its own; 'repair': as 'step', bottom digits "
                      "re-paired within the batch every step (mtljax/data/compose.py)",
                      choices=compose.COMPOSE_MODES),
}
DATASETS.register("mnist", Dataset(_mnist, ("digit",), (28, 28, 1)))
DATASETS.register("colored", Dataset(_colored, ("digit", "color"), (28, 28, 3)))
DATASETS.register("two_digit", Dataset(_two_digit, ("top", "bottom", "sum"), (42, 28, 1)), TWO_DIGIT_OPTIONS)
DATASETS.register("multimnist", Dataset(_multimnist, ("left", "right", "sum"), (28, 28, 1)))


def image_shape(data_cfg: Mapping[str, Any]) -> tuple[int, int, int]:
    """The H×W×C of the images the model sees (training parts stacked on device included)."""
    return DATASETS[data_cfg["dataset"]].image_shape


def split_indices(n: int, val_size: int, val_from: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices into MNIST's 60k: a seeded random choice, or the first images."""
    order = np.arange(n) if val_from == "first" else np.random.default_rng(seed).permutation(n)
    return order[val_size:], order[:val_size]


def build_splits(cfg: Mapping[str, Any]) -> dict[str, Split]:
    """Train, validation and test splits for `cfg`.

    MNIST's 60k training images are split into `60k - data.val_size` for training and
    `data.val_size` for validation (`data.val_from`: a permutation seeded with `data.split_seed`,
    or the first images); test is the 10k. The dataset `data.dataset` is then built from each
    split with its own seed, derived from `data.split_seed`.
    """
    data_cfg = cfg["data"]
    raw = mnist.load_mnist(data_cfg["dir"], data_cfg["source"])
    train_idx, val_idx = split_indices(len(raw.train_images), data_cfg["val_size"], data_cfg["val_from"],
                                       data_cfg["split_seed"])
    sources = {"train": (raw.train_images[train_idx], raw.train_labels[train_idx]),
               "val": (raw.train_images[val_idx], raw.train_labels[val_idx]),
               "test": (raw.test_images, raw.test_labels)}
    builder = DATASETS[data_cfg["dataset"]].build
    splits = {}
    for k, (name, (images, labels)) in enumerate(sources.items()):
        limit = data_cfg["limit"]
        images, labels = images[:limit], labels[:limit]
        built, raw_labels = builder(images, labels, name, data_cfg, seed=data_cfg["split_seed"] * 1000 + k)
        built, raw_labels = built[:limit], {key: v[:limit] for key, v in raw_labels.items()}
        splits[name] = Split(built, {t: tasks.get(t).labels(raw_labels) for t in cfg["tasks"]})
    return splits
