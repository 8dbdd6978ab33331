"""The data constructions: shapes, ranges, labels, determinism, and each construction's rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mtljax import config, data
from mtljax.data import constructions
from conftest import synthetic_mnist, tiny_config

DIGITS = synthetic_mnist(n_train=60, n_test=10)


def test_colored_puts_the_digit_in_the_named_channel():
    images, labels = constructions.colored(DIGITS.train_images, DIGITS.train_labels, seed=0)
    assert images.shape == (60, 28, 28, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels["digit"], DIGITS.train_labels)
    assert set(np.unique(labels["color"])) == {0, 1}
    ink = DIGITS.train_images > 200
    for k in range(60):
        c, other = labels["color"][k], 1 - labels["color"][k]
        # Noise alone is at most 0.5 (128); 0.5*digit (255 on ink here) adds 127.5 more.
        assert images[k, ..., c][ink[k]].min() >= 127
        assert images[k, ..., other].max() <= 128 and images[k, ..., 2].max() <= 128
        gap = images[k, ..., c][ink[k]].astype(float) - images[k, ..., other][ink[k]]
        assert 100 < gap.mean() < 155


def test_two_digit_overlap_rule():
    images, labels = constructions.two_digit(DIGITS.train_images, DIGITS.train_labels, count=30, seed=1)
    assert images.shape == (30, 42, 28, 1) and images.dtype == np.uint8
    rng = np.random.default_rng(1)
    top, bottom = rng.integers(0, 60, 30), rng.integers(0, 60, 30)
    np.testing.assert_array_equal(labels["top"], DIGITS.train_labels[top])
    np.testing.assert_array_equal(labels["bottom"], DIGITS.train_labels[bottom])
    img = images[..., 0]
    np.testing.assert_array_equal(img[:, :14], DIGITS.train_images[top][:, :14])
    np.testing.assert_array_equal(img[:, 28:], DIGITS.train_images[bottom][:, 14:])
    np.testing.assert_array_equal(img[:, 14:28], np.maximum(DIGITS.train_images[top][:, 14:],
                                                            DIGITS.train_images[bottom][:, :14]))


def test_multimnist_construction():
    images, labels = constructions.multimnist(DIGITS.train_images, DIGITS.train_labels, seed=2)
    assert images.shape == (60, 28, 28, 1) and images.dtype == np.uint8
    right = np.random.default_rng(2).integers(0, 60, 60)
    np.testing.assert_array_equal(labels["left"], DIGITS.train_labels)
    np.testing.assert_array_equal(labels["right"], DIGITS.train_labels[right])
    canvas = np.zeros((36, 36), np.uint8)
    canvas[:28, :28] = DIGITS.train_images[5]
    canvas[6:34, 6:34] = np.maximum(canvas[6:34, 6:34], DIGITS.train_images[right[5]])
    idx = [int((i + 0.5) * 36 / 28) for i in range(28)]
    np.testing.assert_array_equal(images[5, ..., 0], canvas[np.ix_(idx, idx)])


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_constructions_are_deterministic(seed):
    x, y = DIGITS.train_images[:20], DIGITS.train_labels[:20]
    for build in (lambda s: constructions.colored(x, y, s), lambda s: constructions.two_digit(x, y, 15, s),
                  lambda s: constructions.multimnist(x, y, s)):
        (a, la), (b, lb) = build(seed), build(seed)
        np.testing.assert_array_equal(a, b)
        for key in la:
            np.testing.assert_array_equal(la[key], lb[key])
            assert la[key].max() <= 9


@pytest.mark.parametrize("dataset,tasks,shape", [
    ("colored", ["digit", "color"], (28, 28, 3)),
    ("two_digit", ["top", "bottom", "sum"], (42, 28, 1)),
    ("multimnist", ["left", "right", "sum"], (28, 28, 1)),
])
def test_build_splits_of_each_dataset(tiny_data_dir, dataset, tasks, shape):
    pairs = {"train_pairs": 300, "val_pairs": 50, "test_pairs": 80} if dataset == "two_digit" else {}
    cfg = config.resolve(tiny_config(tiny_data_dir, tasks=tasks, data={"dataset": dataset, **pairs}))
    splits = data.build_splits(cfg)
    for name, split in splits.items():
        assert split.images.shape[1:] == shape and split.images.dtype == np.uint8
        assert set(split.labels) == set(tasks)
        if "sum" in tasks:  # The regression target: the sum of the two digits' labels, as float32.
            first, second = tasks[:2]
            assert split.labels["sum"].dtype == np.float32
            np.testing.assert_array_equal(split.labels["sum"], split.labels[first] + split.labels[second])
    if dataset == "two_digit":
        assert [len(splits[s]) for s in data.SPLITS] == [300, 50, 80]


def test_an_option_of_another_dataset_is_refused(tiny_data_dir):
    with pytest.raises(config.ConfigError, match="data.train_pairs: not an option of this dataset "
                                                 r"\(an option of dataset two_digit\)"):
        config.resolve(tiny_config(tiny_data_dir, data={"train_pairs": 300}))


def test_task_needs_its_labels(tiny_data_dir):
    with pytest.raises(config.ConfigError, match="task 'color' needs 'color' labels"):
        config.resolve(tiny_config(tiny_data_dir, tasks=["digit", "color"]))


def test_first_images_as_validation():
    train, val = data.split_indices(100, 12, "first", seed=0)
    assert list(val) == list(range(12)) and list(train) == list(range(12, 100))


# sha256 of every split's images and task labels, on the synthetic cache, as the datasets built them
# when every dataset read MNIST alone: reading MNIST through `data.source` changed none of them.
SPLIT_HASHES = {
    "mnist": "d8b7067e49da7c1b9cb85cc419aee7ab0c5415fb58a3fcdbce7d90f86953e535",
    "colored": "26790c3e2e80c05ec90f8d3e9a99b5c8b445e9ecac20dbd28b0055e6355e97cf",
    "two_digit": "14fa231c70098afcb37acd12a8a74c74eb85b6c9ab451f56b87b3bf28895766d",
    "two_digit_step": "4fd628cbffbccd8f232cfcda30ba6df76c6838493f152204695c276964822750",
    "multimnist": "2e567fd9a79cee90ea997c18349cdbc9578e484e271d0abb26a4611e924cd3b1",
}
PAIRS = {"train_pairs": 300, "val_pairs": 50, "test_pairs": 80}


@pytest.mark.parametrize("name,tasks,extra", [
    ("mnist", ["digit", "parity", "threshold"], {}), ("colored", ["digit", "color"], {}),
    ("two_digit", ["top", "bottom", "sum"], PAIRS), ("two_digit_step", ["top", "bottom"], {**PAIRS, "compose": "step"}),
    ("multimnist", ["left", "right", "sum"], {}),
])
def test_mnist_datasets_are_built_as_before(tiny_data_dir, name, tasks, extra):
    import hashlib

    cfg = config.resolve(tiny_config(tiny_data_dir, tasks=tasks, data={"dataset": name.replace("_step", ""), **extra}))
    digest = hashlib.sha256()
    for split in data.build_splits(cfg).values():
        digest.update(np.ascontiguousarray(split.images).tobytes())
        for t in tasks:
            digest.update(np.ascontiguousarray(split.labels[t]).tobytes())
    assert digest.hexdigest() == SPLIT_HASHES[name]
