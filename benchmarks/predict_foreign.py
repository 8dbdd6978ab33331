"""`mtljax.predict` on digits that are not MNIST, rendered the ways people's digits arrive.

The digits are scikit-learn's copy of the UCI optical digits (1,797 digits by 43 writers who never
saw MNIST; 8×8, 17 grey levels). Each chosen digit is rendered, dark ink on light paper at 96×96,
in every rendering of `RENDERINGS`: nearest, bilinear and bicubic upscaling; thin and thick
strokes; a slight rotation; grey paper; noisy paper; JPEG compression. The files then go through
the command line exactly as a user's files do (`python -m mtljax.predict RUN --json`), once with
the run's calibration and once without, and the suite reports, per rendering and overall: digit
accuracy (and parity/threshold where the run has them), the digit's expected calibration error
before and after temperature scaling, the AUROC of its confidence for right against wrong answers,
and the share marked uncertain.

    pip install scikit-learn      # only for this script: it ships the digits, no download
    python -m benchmarks.predict_foreign RUN_DIR [--count 300] [--seeds all] [--update docs/robustness.md --section NAME]
    python -m benchmarks.predict_foreign RUN_DIR --ablate     # each preparation step on and off (in process)
    python -m benchmarks.predict_foreign --stroke-stats       # MNIST's stroke width (userimages.MNIST_STROKE)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from mtljax import calibration  # noqa: E402

SIZE = 96


def upscale(ink: np.ndarray, method: int) -> np.ndarray:
    """8×8 ink in [0, 1] as SIZE×SIZE ink, resampled by `method` (a PIL filter)."""
    return np.asarray(Image.fromarray((ink * 255).astype(np.uint8)).resize((SIZE, SIZE), method), np.float32) / 255


def on_paper(ink: np.ndarray, paper: float = 1.0, pen: float = 0.0) -> Image.Image:
    """Ink drawn with shade `pen` on paper of shade `paper` (1 white), as an 8-bit grey image."""
    return Image.fromarray((np.clip(paper + (pen - paper) * ink, 0, 1) * 255).round().astype(np.uint8))


def rotated(ink: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Bicubic ink turned by 5-15° either way."""
    angle = rng.uniform(5, 15) * rng.choice([-1, 1])
    return on_paper(np.clip(ndimage.rotate(upscale(ink, Image.BICUBIC), angle, reshape=False, order=1), 0, 1))


def noisy(ink: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Bicubic ink on white paper with Gaussian noise (σ 0.12 of the full range) on every pixel."""
    shade = 1.0 - upscale(ink, Image.BICUBIC) + rng.normal(0, 0.12, (SIZE, SIZE))
    return Image.fromarray((np.clip(shade, 0, 1) * 255).round().astype(np.uint8))


# name -> (8×8 ink in [0, 1], rng) -> dark-on-light image. "jpeg" is saved at quality 15.
RENDERINGS = {
    "nearest": lambda ink, rng: on_paper(upscale(ink, Image.NEAREST)),
    "bilinear": lambda ink, rng: on_paper(upscale(ink, Image.BILINEAR)),
    "bicubic": lambda ink, rng: on_paper(upscale(ink, Image.BICUBIC)),
    "thin": lambda ink, rng: on_paper(ndimage.grey_erosion(upscale(ink, Image.BICUBIC), size=7)),
    "thick": lambda ink, rng: on_paper(ndimage.grey_dilation(upscale(ink, Image.BICUBIC), size=9)),
    "rotated": rotated,
    "grey_paper": lambda ink, rng: on_paper(upscale(ink, Image.BICUBIC), paper=0.7, pen=0.25),
    "noisy_paper": noisy,
    "jpeg": lambda ink, rng: on_paper(upscale(ink, Image.BICUBIC)),
}


def render_all(directory: Path, count: int) -> tuple[dict[str, list[Path]], np.ndarray]:
    """`count` UCI digits (a fixed draw) saved in every rendering: rendering -> files; the labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pick = np.random.default_rng(0).choice(len(digits.images), count, replace=False)
    files = {}
    for r, (name, render) in enumerate(RENDERINGS.items()):
        rng = np.random.default_rng([1, r])
        files[name] = []
        for k in pick:
            image = render(digits.images[k] / 16.0, rng)
            path = directory / f"{name}_{k}.{'jpg' if name == 'jpeg' else 'png'}"
            image.save(path, quality=15) if name == "jpeg" else image.save(path)
            files[name].append(path)
    return files, digits.target[pick]


def predict_cli(run_dir: Path, files: list[Path], extra: list[str]) -> list[dict]:
    """`python -m mtljax.predict RUN_DIR FILES --json EXTRA`'s predictions, as a user runs it."""
    out = subprocess.run([sys.executable, "-m", "mtljax.predict", str(run_dir), *map(str, files), "--json", *extra],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["predictions"]


def truth_of(task: str, digits: np.ndarray) -> np.ndarray:
    """The labels of `task` for UCI digits."""
    return {"digit": digits, "parity": digits % 2, "threshold": (digits >= 5).astype(int)}[task]


def scores(calibrated: list[dict], raw: list[dict], digits: np.ndarray) -> dict[str, float]:
    """Accuracy per task (%), and the digit's ECE before/after (%), AUROC, share uncertain (%) and
    accuracy of the answers not marked uncertain (%)."""
    row = {f"{t} %": 100 * float(np.mean([p[t]["class"] for p in calibrated] == truth_of(t, digits)))
           for t in ("digit", "parity", "threshold") if t in calibrated[0]}
    correct = np.array([p["digit"]["class"] for p in calibrated]) == digits
    conf_after = np.array([p["digit"]["probability"] for p in calibrated])
    conf_before = np.array([p["digit"]["probability"] for p in raw])
    row.update({"ECE before %": 100 * calibration.ece(conf_before, correct),
                "ECE after %": 100 * calibration.ece(conf_after, correct),
                "AUROC": calibration.auroc(conf_after, correct),
                "uncertain %": 100 * float(np.mean([p["digit"]["uncertain"] for p in calibrated]))})
    sure = ~np.array([p["digit"]["uncertain"] for p in calibrated])
    row["digit % when sure"] = 100 * float(np.mean(correct[sure])) if sure.any() else float("nan")
    return row


def suite(run_dir: Path, count: int, extra: list[str]) -> dict[str, dict[str, float]]:
    """Rendering -> scores, and "overall" over every rendering's files."""
    with tempfile.TemporaryDirectory() as tmp:
        files, digits = render_all(Path(tmp), count)
        every = [f for name in RENDERINGS for f in files[name]]
        calibrated, raw = predict_cli(run_dir, every, extra), predict_cli(run_dir, every, extra + ["--no-calibration"])
    rows = {}
    for r, name in enumerate(RENDERINGS):
        part = slice(r * count, (r + 1) * count)
        rows[name] = scores(calibrated[part], raw[part], digits)
    rows["overall"] = scores(calibrated, raw, np.tile(digits, len(RENDERINGS)))
    return rows


def table(rows: dict[str, dict[str, float]]) -> str:
    """The suite's rows as a Markdown table."""
    keys = list(rows["overall"])
    lines = ["| rendering | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    for name, row in rows.items():
        cells = [f"{row[k]:.3f}" if k == "AUROC" else f"{row[k]:.1f}" for k in keys]
        lines.append(f"| {'**overall**' if name == 'overall' else name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mnist_line(run_dir: Path) -> str:
    """The run's MNIST test ECE of each task before and after scaling (its calibration.json)."""
    path = run_dir / calibration.CALIBRATION_FILE
    if not path.is_file():
        return "MNIST test ECE: the run has no calibration.json."
    mean = json.loads(path.read_text())["mean"]
    return "MNIST test ECE before → after temperature scaling: " + ", ".join(
        f"{t} {100 * m['test_ece_before']:.2f} → {100 * m['test_ece_after']:.2f} % (T = {m['temperature']:.2f})"
        for t, m in mean.items()) + "."


def ablate(run_dir: Path, count: int) -> str:
    """Digit accuracy per rendering with each preparation step of `userimages.STEPS` switched from
    its default (on to off, off to on), as a Markdown table. In process, with the same functions
    as the command line (load_image, prepare, predict; seed 0, calibrated)."""
    from mtljax import data, predict
    from mtljax.data import userimages

    cfg, model, variables = predict.load_seeds(run_dir)
    shape, temps = data.image_shape(cfg["data"]), predict.run_temperatures(run_dir, [0], True)
    variants = {"default": userimages.DEFAULT_STEPS}
    for step in userimages.STEPS:
        variants[("−" if step in userimages.DEFAULT_STEPS else "+") + step] = userimages.DEFAULT_STEPS ^ {step}
    with tempfile.TemporaryDirectory() as tmp:
        files, digits = render_all(Path(tmp), count)
        images = {name: [predict.load_image(f) for f in paths] for name, paths in files.items()}
    lines = ["| preparation | " + " | ".join(RENDERINGS) + " | overall |", "|---|" + "---:|" * (len(RENDERINGS) + 1)]
    for label, steps in variants.items():
        accuracy = []
        for name in RENDERINGS:
            batch = np.stack([userimages.prepare(rgb, shape, steps) for rgb in images[name]])
            got = predict.predict(cfg, predict.seed_outputs(model, variables, [0], batch), temps)
            accuracy.append(100 * np.mean(np.array([p["digit"]["class"] for p in got]) == digits))
        lines.append(f"| {label} | " + " | ".join(f"{a:.1f}" for a in accuracy) + f" | {np.mean(accuracy):.1f} |")
    return (f"`python -m benchmarks.predict_foreign {run_dir} --ablate`: digit accuracy (%), {count} UCI digits "
            f"per rendering\n\n" + "\n".join(lines))


def stroke_stats(count: int = 5000) -> None:
    """Prints MNIST's stroke width (`userimages.stroke_width` of pixels above half), median and 10-90 %."""
    from mtljax.data import mnist
    from mtljax.data.userimages import stroke_width

    images = mnist.read_cache(mnist.default_data_dir()).train_images[:count].astype(np.float32) / 255
    widths = np.array([stroke_width(image.squeeze() > 0.5) for image in images])
    print(f"MNIST stroke width over {count} training digits: median {np.median(widths):.2f}, "
          f"10-90 % {np.percentile(widths, 10):.2f}-{np.percentile(widths, 90):.2f} pixels")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, nargs="?")
    parser.add_argument("--count", type=int, default=300, help="digits per rendering")
    parser.add_argument("--seeds", help="passed to predict: 'all' for the run's seed ensemble")
    parser.add_argument("--ensemble", default="mean")
    parser.add_argument("--ablate", action="store_true", help="each preparation step on and off (in process)")
    parser.add_argument("--stroke-stats", action="store_true")
    parser.add_argument("--update", type=Path, help="write the table into this Markdown file (SECTION markers)")
    parser.add_argument("--section", default="foreign", help="the marker name (`--ablate`: the table goes there too)")
    args = parser.parse_args()
    if args.stroke_stats:
        return stroke_stats()
    if args.ablate:
        text = ablate(args.run_dir, args.count)
    else:
        extra = ["--seeds", args.seeds, "--ensemble", args.ensemble] if args.seeds else []
        command = f"`python -m benchmarks.predict_foreign {args.run_dir}{' --seeds ' + args.seeds if args.seeds else ''}`"
        text = (f"{command}: {args.count} UCI digits per rendering\n\n{table(suite(args.run_dir, args.count, extra))}"
                f"\n\n{mnist_line(args.run_dir)}")
    print(text)
    if args.update:
        from mtljax import results

        results.update_readme(args.update, text, section=args.section)


if __name__ == "__main__":
    main()
