"""Data: MNIST sources, the datasets built from them, and on-device image construction and
augmentation. Nothing here imports the model, MTL or training code."""

from mtljax.data.datasets import DATASETS, SPLITS, Split, build_splits, image_shape, split_indices

__all__ = ["DATASETS", "SPLITS", "Split", "build_splits", "image_shape", "split_indices"]
