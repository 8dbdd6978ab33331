"""Writes scikit-learn's UCI optical digits as a user's files: an npz in Keras's layout and a
folder of PNG images with labels.csv. Both train through `data.source` with no code:

    pip install scikit-learn          # it ships the 1,797 digits (8×8, 17 grey levels); no download
    python examples/uci_digits.py     # writes ~/.cache/mtljax/uci-digits/{digits.npz,folder/}
    python -m mtljax.run experiments/uci_digits.py
    python -m mtljax.run experiments/uci_digits.py --set data.source=folder:~/.cache/mtljax/uci-digits/folder

The digits have no test split of their own: the runs hold out 20 % of them (`data.test_fraction`).
Pixels 0-16 are stored as uint8 min(16·v, 255). Beside `label` the files hold a second column,
`writer_half` (0 for the first 899 digits, 1 for the rest: scikit-learn keeps them in the order of
the original files, roughly by writer), a column a task can be declared over.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_DIR = Path("~/.cache/mtljax/uci-digits").expanduser()


def digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits as uint8 N×8×8 images and their labels."""
    from sklearn.datasets import load_digits  # Only this script needs scikit-learn (the `bench` extra).

    bunch = load_digits()
    images = np.minimum(bunch.images * 16, 255).astype(np.uint8)
    return images, bunch.target.astype(np.uint8)


def write(out: Path) -> None:
    """The npz and the folder of the digits under `out`."""
    images, labels = digits()
    half = (np.arange(len(labels)) >= len(labels) // 2).astype(np.uint8)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "digits.npz", x_train=images, y_train=labels, y_train_writer_half=half)
    folder = out / "folder"
    folder.mkdir(exist_ok=True)
    rows = ["file,label,writer_half"]
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image).save(folder / f"{i:04d}.png")
        rows.append(f"{i:04d}.png,{label},{half[i]}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    print(f"wrote {len(images)} digits to {out / 'digits.npz'} and {folder}/ (labels.csv and PNGs)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help="where to write (default: %(default)s)")
    write(parser.parse_args().out)
