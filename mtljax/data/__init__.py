"""Data: sources (MNIST, users' files, dataset libraries), the datasets built from them, and
on-device image construction and augmentation. Nothing here imports the model, MTL or training code."""

from mtljax.data.datasets import DATASETS, SPLITS, Split, image_shape, provided_labels, split_indices
from mtljax.data.files import DataError
from mtljax.data.splits import build_splits, load_splits

__all__ = ["DATASETS", "SPLITS", "DataError", "Split", "build_splits", "image_shape", "load_splits",
           "provided_labels", "split_indices"]
