"""`mtljax.predict` on digits that are not MNIST: scikit-learn's copy of the UCI optical digits
(1,797 digits written by other people, 8×8, 17 grey levels), saved as dark-on-light PNGs of
96×96 pixels (nearest-neighbour upscaling, so blocky), then predicted through the command line
exactly as a user's files would be.

    pip install scikit-learn      # only for this script: it ships the digits, no download
    python benchmarks/predict_foreign.py checkpoints/threshold/<run-id> [--count 300] [--update docs/usage.md]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--update", type=Path, help="write the result into this Markdown file (foreign markers)")
    args = parser.parse_args()
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(0)
    pick = rng.choice(len(digits.images), args.count, replace=False)
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for k in pick:
            ink = digits.images[k] / 16.0
            image = Image.fromarray(((1 - ink) * 255).astype(np.uint8)).resize((96, 96), Image.NEAREST)
            files.append(Path(tmp) / f"{k}.png")
            image.save(files[-1])
        out = subprocess.run([sys.executable, "-m", "mtljax.predict", str(args.run_dir), *map(str, files), "--json"],
                             check=True, capture_output=True, text=True).stdout
    predictions = json.loads(out)["predictions"]
    truth = digits.target[pick]
    digit = np.array([p["digit"]["class"] for p in predictions])
    lines = [f"`python benchmarks/predict_foreign.py {args.run_dir}` ({args.count} UCI digits, 8×8 upscaled to "
             f"96×96, dark on light): digit {100 * np.mean(digit == truth):.1f} %"]
    for task, fn in (("parity", lambda d: d % 2), ("threshold", lambda d: (d >= 5).astype(int))):
        if task in predictions[0]:
            got = np.array([p[task]["class"] for p in predictions])
            lines.append(f"{task} {100 * np.mean(got == fn(truth)):.1f} %")
    text = ", ".join(lines) + " correct."
    print(text)
    if args.update:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from mtljax import results

        results.update_readme(args.update, text, section="foreign")


if __name__ == "__main__":
    main()
