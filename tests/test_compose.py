"""Two-digit training images stacked in the train step (mtljax/data/compose.py, `data.compose`)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np

from mtljax import config, run
from mtljax.data import augment, compose, constructions
from mtljax.train import experiment
from conftest import synthetic_mnist, tiny_config

DIGITS = synthetic_mnist(n_train=60, n_test=10)


def _parts(count=16, seed=3):
    parts, labels = constructions.two_digit_parts(DIGITS.train_images, DIGITS.train_labels, count, seed)
    return {"image": jnp.asarray(parts), **{t: jnp.asarray(y) for t, y in labels.items()}}, parts, labels


def test_parts_are_the_host_pairs_before_stacking():
    batch, parts, labels = _parts()
    images, host_labels = constructions.two_digit(DIGITS.train_images, DIGITS.train_labels, 16, 3)
    assert parts.shape == (16, 28, 28, 2) and parts.dtype == np.uint8
    np.testing.assert_array_equal(constructions.stack_two_digits(parts), images)
    for t in ("top", "bottom"):
        np.testing.assert_array_equal(labels[t], host_labels[t])
    # Stacked on device without a key: the floats the step makes of the host images, to the bit.
    stacked = compose.two_digit(batch, None, repair=True, aug=None)
    np.testing.assert_array_equal(np.asarray(stacked["image"]), np.asarray(augment.to_float(jnp.asarray(images))))
    np.testing.assert_array_equal(np.asarray(stacked["bottom"]), host_labels["bottom"])


def test_repair_moves_bottom_digits_with_their_labels():
    batch, parts, labels = _parts(count=32)
    out = compose.two_digit(batch, jax.random.key(0), repair=True, aug=None)
    image = np.asarray(out["image"])[..., 0]
    floats = np.asarray(augment.to_float(jnp.asarray(parts)))
    np.testing.assert_array_equal(image[:, :14], floats[:, :14, :, 0])  # Tops stay in place.
    np.testing.assert_array_equal(np.asarray(out["top"]), labels["top"])
    moved = 0
    for i in range(32):
        # Rows 28-41 show only the bottom digit: find whose it is, and check its label came along.
        source = [j for j in range(32) if np.array_equal(image[i, 28:], floats[j, 14:, :, 1])]
        assert source and int(out["bottom"][i]) in {int(labels["bottom"][j]) for j in source}
        moved += i not in source
    assert moved > 16  # A random permutation of 32 fixes ~1 on average.
    again = compose.two_digit(batch, jax.random.key(0), repair=True, aug=None)
    np.testing.assert_array_equal(np.asarray(again["image"]), image[..., None])  # A function of the key.


def test_each_digit_gets_its_own_warp():
    """The same digit as top and as bottom (the other part blank): its two warped copies differ,
    so top and bottom were not warped by one map; with zero ranges nothing moves."""
    digit = DIGITS.train_images[0]
    blank = np.zeros_like(digit)
    parts = np.stack([np.stack([digit, blank], -1), np.stack([blank, digit], -1)])
    batch = {"image": jnp.asarray(parts)}
    aug = {"shift": 2.0, "rotate": 10.0, "scale": 0.1}
    image = np.asarray(compose.two_digit(batch, jax.random.key(1), repair=False, aug=aug)["image"])[..., 0]
    as_top, as_bottom = image[0, :28], image[1, 14:]
    assert as_top.max() > 0.5 and as_bottom.max() > 0.5
    assert np.abs(as_top - as_bottom).max() > 0.1
    still = compose.two_digit(batch, jax.random.key(1), repair=False,
                              aug={"shift": 0.0, "rotate": 0.0, "scale": 0.0})["image"]
    np.testing.assert_array_equal(np.asarray(still), np.asarray(augment.to_float(jnp.asarray(constructions.stack_two_digits(parts)))))


def test_a_two_digit_run_stacks_its_training_pairs_in_the_step(tmp_path, tiny_data_dir):
    cfg = tiny_config(tiny_data_dir, name="pairs", tasks=["top", "bottom"],
                      data={"dataset": "two_digit", "compose": "repair", "train_pairs": 300, "val_pairs": 100,
                            "test_pairs": 100},
                      augment={"shift": 1.0}, train={"epochs": 2, "batch_size": 50}, mtl={"diagnose_every": 1})
    exp = experiment.build_experiment(config.resolve(cfg))
    assert exp.splits["train"].images.shape == (300, 28, 28, 2)  # Parts; validation and test are whole.
    assert exp.splits["val"].images.shape == (100, 42, 28, 1)
    path = tmp_path / "pairs.py"
    path.write_text("CONFIG = " + repr(cfg) + "\n")
    assert run.main([str(path), "--root", str(tmp_path / "runs")]) == 0
    history = [json.loads(line) for line in
               next((tmp_path / "runs" / "pairs").iterdir()).joinpath("metrics.jsonl").read_text().splitlines()]
    assert len(history) == 2 and all(np.isfinite(r["train/loss"]) for r in history)
    assert "conflict/cos/top|bottom" in history[-1]
