"""Datasets: the train/validation/test splits of a config, as uint8 images and task labels."""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import numpy as np

from mtljax import mnist, tasks


class Split(NamedTuple):
    """One split: uint8 images N×H×W×C and, per configured task, int32 labels of length N."""

    images: np.ndarray
    labels: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.images)


def _make_split(images: np.ndarray, raw_labels: Mapping[str, np.ndarray], task_names, limit) -> Split:
    images, raw_labels = images[:limit], {k: v[:limit] for k, v in raw_labels.items()}
    labels = {name: tasks.TASKS[name].labels(raw_labels) for name in task_names}
    return Split(images[..., None] if images.ndim == 3 else images, labels)


def build_splits(cfg: Mapping[str, Any]) -> dict[str, Split]:
    """Train, validation and test splits for `cfg`.

    MNIST's 60k training images are split by a permutation seeded with `data.split_seed` into
    `60k - data.val_size` for training and `data.val_size` for validation; test is the 10k.
    """
    data_cfg = cfg["data"]
    raw = mnist.load_mnist(data_cfg["dir"], data_cfg["source"])
    perm = np.random.default_rng(data_cfg["split_seed"]).permutation(len(raw.train_images))
    val_idx, train_idx = perm[: data_cfg["val_size"]], perm[data_cfg["val_size"]:]
    names, limit = cfg["tasks"], data_cfg["limit"]
    return {
        "train": _make_split(raw.train_images[train_idx], {"digit": raw.train_labels[train_idx]}, names, limit),
        "val": _make_split(raw.train_images[val_idx], {"digit": raw.train_labels[val_idx]}, names, limit),
        "test": _make_split(raw.test_images, {"digit": raw.test_labels}, names, limit),
    }
