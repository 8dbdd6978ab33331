"""Datasets: the train/validation/test splits of a config, as uint8 images and task labels.

Every dataset starts from MNIST's three splits (training minus validation, validation, test) and
builds its images and raw labels from each (mtljax/data/constructions.py), so validation and test
images are never built from training digits.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

from mtljax import tasks

from mtljax.data import constructions, mnist


class Split(NamedTuple):
    """One split: uint8 images N×H×W×C and, per configured task, int32 labels of length N."""

    images: np.ndarray
    labels: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.images)


SPLITS = ("train", "val", "test")


def _mnist(images, labels, split: str, data_cfg, seed: int):
    return images[..., None], {"digit": labels}


def _colored(images, labels, split: str, data_cfg, seed: int):
    return constructions.colored(images, labels, seed)


def _two_digit(images, labels, split: str, data_cfg, seed: int):
    if split == "train" and data_cfg["compose"] != "host":  # Stacked in the train step (compose.py).
        return constructions.two_digit_parts(images, labels, data_cfg["train_pairs"], seed)
    return constructions.two_digit(images, labels, data_cfg[f"{split}_pairs"], seed)


def _multimnist(images, labels, split: str, data_cfg, seed: int):
    return constructions.multimnist(images, labels, seed)


# name -> (builder, raw label names it provides, image shape the model sees)
DATASETS: dict[str, tuple[Callable, tuple[str, ...], tuple[int, int, int]]] = {
    "mnist": (_mnist, ("digit",), (28, 28, 1)),
    "colored": (_colored, ("digit", "color"), (28, 28, 3)),
    "two_digit": (_two_digit, ("top", "bottom"), (42, 28, 1)),
    "multimnist": (_multimnist, ("left", "right"), (28, 28, 1)),
}


def image_shape(data_cfg: Mapping[str, Any]) -> tuple[int, int, int]:
    """The H×W×C of the images the model sees (training parts stacked on device included)."""
    return DATASETS[data_cfg["dataset"]][2]


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
    builder = DATASETS[data_cfg["dataset"]][0]
    splits = {}
    for k, (name, (images, labels)) in enumerate(sources.items()):
        limit = data_cfg["limit"]
        images, labels = images[:limit], labels[:limit]
        built, raw_labels = builder(images, labels, name, data_cfg, seed=data_cfg["split_seed"] * 1000 + k)
        built, raw_labels = built[:limit], {key: v[:limit] for key, v in raw_labels.items()}
        splits[name] = Split(built, {t: tasks.TASKS[t].labels(raw_labels) for t in cfg["tasks"]})
    return splits
