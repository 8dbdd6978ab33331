"""`python -m mtljax.predict RUN_DIR IMAGE [IMAGE ...] [--json] [--seed K]`: predict every task.

Loads the run's best checkpoint and prints, per image, each task's predicted class and its
probability. Any PNG/JPEG of any size and colour is prepared as MNIST was made: grayscale, inverted
when the background is light, cropped to the ink, scaled to fit 20×20 (keeping its aspect) and
placed in 28×28 with its centre of mass at the centre. For two-digit models the ink is fitted into
40×26 and centred in 42×28; for coloured models the ink keeps its colour (its strongest of red and
green) over the dark background the model was trained on.

A file that cannot be read as an image (not an image, empty, unreadable, a directory) gets one
line `error: <file>: <reason>` and the other files are still predicted; the exit code is then 2.
A run without a checkpoint is one such line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mtljax import config, data, models, tasks
from mtljax.outputs import rundir
from mtljax.train import checkpoint
from mtljax.train.step import make_eval_step


class ImageError(ValueError):
    """A file is not a usable image; the message says why."""


def load_image(path: Path) -> np.ndarray:
    """The image at `path` as float RGB H×W×3 in [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if path.is_dir():
        raise ImageError("is a directory")
    try:
        if path.stat().st_size == 0:
            raise ImageError("is empty")
        with Image.open(path) as image:
            image.load()
            return np.asarray(image.convert("RGB"), np.float32) / 255.0
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except PermissionError:
        raise ImageError("cannot be read (permission denied)") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageError(f"is not a readable PNG/JPEG image ({type(exc).__name__})") from None


def prepare(rgb: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """An RGB image as a model input of `shape` (H×W×C uint8), MNIST-style (module docstring)."""
    from PIL import Image

    gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    background = float(np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])))
    # Ink is what differs from the background: dark on light paper is inverted, as MNIST is light on dark.
    ink = background - gray if background > 0.5 else gray - background
    ink = np.clip(ink / max(float(ink.max()), 1e-6), 0.0, 1.0)
    rows, cols = np.nonzero(ink > 0.2)
    if len(rows) == 0:
        raise ImageError("has no ink (a blank image)")
    crop = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    ink, rgb = ink[crop], rgb[crop]
    height, width, channels = shape
    box_h, box_w = (20, 20) if (height, width) == (28, 28) else (height - 2, width - 2)
    scale = min(box_h / ink.shape[0], box_w / ink.shape[1])
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    small = np.asarray(Image.fromarray((ink * 255).astype(np.uint8)).resize(size, Image.LANCZOS), np.float32) / 255
    canvas = np.zeros((height, width), np.float32)
    ys, xs = np.indices(small.shape)
    total = max(float(small.sum()), 1e-6)
    cy, cx = float((ys * small).sum()) / total, float((xs * small).sum()) / total  # Centre of mass.
    top = int(np.clip(round((height - 1) / 2 - cy), 0, height - small.shape[0]))
    left = int(np.clip(round((width - 1) / 2 - cx), 0, width - small.shape[1]))
    canvas[top:top + small.shape[0], left:left + small.shape[1]] = small
    if channels == 1:
        return (canvas * 255).round().astype(np.uint8)[..., None]
    # Coloured models: the ink in its dominant channel (red 0 or green 1), blue empty.
    channel = 0 if rgb[..., 0].mean() >= rgb[..., 1].mean() else 1
    out = np.zeros((height, width, channels), np.float32)
    out[..., channel] = canvas
    return (out * 255).round().astype(np.uint8)


def load_model(run_dir: Path, seed: int = 0, which: str = "best") -> tuple[Any, dict, Any]:
    """The run's config, model and variables (`{"params", "batch_stats"}`, for `model.apply`) of
    seed index `seed` from its `which` ("best" or "latest") checkpoint.

    Raises:
      checkpoint.CheckpointError: no such checkpoint (or a damaged one).
      ValueError: no such seed.
    """
    cfg = config.load_run_config(run_dir)
    model = models.build_model(cfg["model"], {t: tasks.get(t).outputs for t in cfg["tasks"]})
    ckpts = checkpoint.RunCheckpoints(run_dir)
    try:
        variables = ckpts.load_variables(which)
    finally:
        ckpts.close()
    n_seeds = jax.tree.leaves(variables["params"])[0].shape[0]
    if not 0 <= seed < n_seeds:
        raise ValueError(f"--seed {seed}: the run has seeds 0..{n_seeds - 1}")
    variables = {"params": models.model_params(variables["params"]), "batch_stats": variables["batch_stats"]}
    return cfg, model, jax.tree.map(lambda a: jnp.asarray(a[seed]), variables)


def predict(cfg, model, variables, images: np.ndarray) -> list[dict[str, dict[str, Any]]]:
    """Per image and task: for a classification task {"class", "label", "probability",
    "probabilities"}; for a regression task {"value", "label"}."""
    outputs = jax.jit(make_eval_step(model))(variables["params"], variables.get("batch_stats", {}),
                                             jnp.asarray(images))
    return [{t: describe(tasks.get(t), np.asarray(outputs[t][i])) for t in cfg["tasks"]} for i in range(len(images))]


def describe(task: tasks.Task, outputs: np.ndarray) -> dict[str, Any]:
    """One image's prediction of `task` from its head's outputs."""
    if task.kind != "classification":
        value = float(task.predict(outputs))
        return {"value": value, "label": task.describe(value)}
    probs = np.asarray(jax.nn.softmax(outputs))
    k = int(np.argmax(probs))
    return {"class": k, "label": task.class_names[k], "probability": float(probs[k]),
            "probabilities": [round(float(p), 6) for p in probs]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtljax.predict", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("images", type=Path, nargs="+")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--seed", type=int, default=0, help="seed index of a --seeds run")
    args = parser.parse_args(argv)
    if not (args.run_dir / rundir.CONFIG_FILE).is_file():
        print(f"error: {args.run_dir} is not a run directory (no {rundir.CONFIG_FILE})", file=sys.stderr)
        return 2
    try:
        cfg, model, variables = load_model(args.run_dir, args.seed)
    except (checkpoint.CheckpointError, config.ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    shape = data.image_shape(cfg["data"])
    prepared, names, failed = [], [], False
    for path in args.images:
        try:
            prepared.append(prepare(load_image(path), shape))
            names.append(str(path))
        except ImageError as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            failed = True
    results = predict(cfg, model, variables, np.stack(prepared)) if prepared else []
    if args.json:
        print(json.dumps({"run": str(args.run_dir), "predictions": [{"file": n, **r} for n, r in zip(names, results)]},
                         indent=1))
    else:
        for name, result in zip(names, results):
            parts = [f"{t} {r['label']}" + (f" ({100 * r['probability']:.1f} %)" if "probability" in r else "")
                     for t, r in result.items()]
            print(f"{name}: {' | '.join(parts)}")
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
