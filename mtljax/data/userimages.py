"""Users' images as MNIST-style model inputs, the way MNIST itself was made (LeCun et al. 1998):
the ink found and cropped, fitted into a 20×20 box with anti-aliasing, and placed in 28×28 with
its centre of mass at the centre. Two-digit models fit the ink into 40×26 and centre it in 42×28;
coloured models keep the ink's colour (its strongest of red and green) on a dark background.

Optional steps (`STEPS`), each kept in `DEFAULT_STEPS` only where `benchmarks/predict_foreign.py`
showed it helps (docs/robustness.md):
  - "stroke": thin ink whose strokes are wider than MNIST's typical stroke once fitted (thickening
    thin ink was measured too: it hurt on noisy paper, whose specks read as thin strokes);
  - "smooth": a Gaussian blur of σ SMOOTH_SIGMA pixels of the model's box before fitting (blocky,
    pixelated ink becomes smooth strokes). Not a default: it helped a model trained with blur on
    blocky digits but cost a model trained on plain MNIST 8.6 points over the suite;
  - "antialias": resize with a Lanczos filter (off: nearest neighbour, hard edges);
  - "mass_centre": centre by centre of mass (off: centre the ink's bounding box);
  - "denoise": a 3×3 median filter before the ink is found (speckled paper, JPEG artefacts).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

STEPS = ("stroke", "smooth", "antialias", "mass_centre", "denoise")
DEFAULT_STEPS = frozenset({"stroke", "antialias", "mass_centre"})
INK_THRESHOLD = 0.2  # Of the strongest ink: fainter is paper, noise or shadow.
# MNIST's median stroke width, in pixels at 28×28 (`stroke_width` of pixels above half, median of
# 5,000 training digits: `python -m benchmarks.predict_foreign --stroke-stats`; 10-90 %: 1.4-2.7).
MNIST_STROKE = 1.95
SMOOTH_SIGMA = 1.0  # In pixels of the 20×20 box.


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


def ink_of(rgb: np.ndarray, denoise: bool = False) -> np.ndarray:
    """Ink strength in [0, 1] (H×W): how far each pixel is from the paper, whose shade is the
    median of the border. Dark ink on light paper is inverted, as MNIST is light ink on dark."""
    gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    if denoise:
        gray = ndimage.median_filter(gray, size=3, mode="nearest")
    background = float(np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])))
    ink = background - gray if background > 0.5 else gray - background
    return np.clip(ink / max(float(ink.max()), 1e-6), 0.0, 1.0)


def stroke_width(mask: np.ndarray) -> float:
    """The mean width of the strokes of a binary ink mask: 2·area / perimeter (a stroke of width w
    and length L ≫ w has area wL and perimeter ≈ 2L); the perimeter counts ink pixel edges that
    touch paper."""
    padded = np.pad(mask.astype(bool), 1)
    edges = sum(int(np.sum(padded & ~np.roll(padded, shift, axis))) for axis in (0, 1) for shift in (1, -1))
    return 2.0 * float(mask.sum()) / max(edges, 1)


def normalise_stroke(ink: np.ndarray, box_scale: float) -> np.ndarray:
    """`ink` (cropped) thinned by grey erosion with a disc, so its strokes will be about
    MNIST_STROKE pixels wide once scaled by `box_scale` into the model's box; ink already that
    thin is kept."""
    width = stroke_width(ink > 0.5) * box_scale
    radius = int(round((width - MNIST_STROKE) / 2 / box_scale))
    if radius <= 0:
        return ink
    ys, xs = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    out = ndimage.grey_erosion(ink, footprint=ys ** 2 + xs ** 2 <= radius ** 2, mode="constant", cval=0.0)
    return out if out.max() > INK_THRESHOLD else ink  # Never erode a digit away.


def as_is(rgb: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """An RGB image as a model input of `shape` (H×W×C uint8) the way a run's own source gave its
    images: resized whole (Lanczos), greyscale as ITU-R 601 luma when C is 1; no ink is sought."""
    from PIL import Image

    height, width, channels = shape
    image = Image.fromarray((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8))
    image = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.LANCZOS)
    pixels = np.asarray(image, np.uint8)
    return pixels[..., None] if channels == 1 else pixels


def prepare(rgb: np.ndarray, shape: tuple[int, int, int], steps: frozenset[str] = DEFAULT_STEPS) -> np.ndarray:
    """An RGB image as a model input of `shape` (H×W×C uint8), MNIST-style (module docstring); with
    the step "as-is" alone, `as_is` instead."""
    from PIL import Image

    if "as-is" in steps:
        return as_is(rgb, shape)

    ink = ink_of(rgb, "denoise" in steps)
    rows, cols = np.nonzero(ink > INK_THRESHOLD)
    if len(rows) == 0:
        raise ImageError("has no ink (a blank image)")
    crop = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    ink, rgb = ink[crop], rgb[crop]
    height, width, channels = shape
    box_h, box_w = (20, 20) if (height, width) == (28, 28) else (height - 2, width - 2)
    if "stroke" in steps:
        ink = normalise_stroke(ink, min(box_h / ink.shape[0], box_w / ink.shape[1]))
    if "smooth" in steps:  # Zeros beyond the crop: the ink's box, hence its fitted size, stays.
        ink = ndimage.gaussian_filter(ink, SMOOTH_SIGMA / min(box_h / ink.shape[0], box_w / ink.shape[1]), mode="constant")
    scale = min(box_h / ink.shape[0], box_w / ink.shape[1])
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    resample = Image.LANCZOS if "antialias" in steps else Image.NEAREST
    small = np.asarray(Image.fromarray((ink * 255).astype(np.uint8)).resize(size, resample), np.float32) / 255
    canvas = place(small, height, width, "mass_centre" in steps)
    if channels == 1:
        return (canvas * 255).round().astype(np.uint8)[..., None]
    # Coloured models: the ink in its dominant channel (red 0 or green 1), blue empty.
    channel = 0 if rgb[..., 0].mean() >= rgb[..., 1].mean() else 1
    out = np.zeros((height, width, channels), np.float32)
    out[..., channel] = canvas
    return (out * 255).round().astype(np.uint8)


def place(small: np.ndarray, height: int, width: int, mass_centre: bool) -> np.ndarray:
    """`small` on a zero canvas of height × width, its centre of mass (or its box's centre) at the
    canvas centre, kept inside the canvas."""
    if mass_centre:
        ys, xs = np.indices(small.shape)
        total = max(float(small.sum()), 1e-6)
        cy, cx = float((ys * small).sum()) / total, float((xs * small).sum()) / total
    else:
        cy, cx = (small.shape[0] - 1) / 2, (small.shape[1] - 1) / 2
    top = int(np.clip(round((height - 1) / 2 - cy), 0, height - small.shape[0]))
    left = int(np.clip(round((width - 1) / 2 - cx), 0, width - small.shape[1]))
    canvas = np.zeros((height, width), np.float32)
    canvas[top:top + small.shape[0], left:left + small.shape[1]] = small
    return canvas
