"""Streamed training images (`data.load: stream`) against the in-memory path, in one process.

    python -m benchmarks.stream [--copies 10] [--rounds 3] [--update docs/data.md]

MNIST's 60,000 training images are written `--copies` times over into plain IDX files (the copies
shifted by one pixel each, so no two items are equal), the source `idx:DIR`. Then:

1. **Memory**: a fresh process builds the threshold.py experiment from them in memory, another
   streamed; each reports its peak resident memory. The difference over the training images'
   bytes is what the in-memory path holds per byte of data (`stream.MEMORY_PER_BYTE`).
2. **Speed**: in this process, the threshold.py model and batch train whole epochs of MNIST's
   own 54,000 training images, in memory and streamed, in alternating windows (`--rounds` each);
   images/s of the training calls alone (validation excluded), and their ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
from mtljax import config, results  # noqa: E402
from mtljax.data import mnist  # noqa: E402


def write_idx(directory: Path, copies: int) -> int:
    """MNIST's training split `copies` times (each copy rolled by one more pixel) as plain IDX files."""
    raw = mnist.load_mnist()
    images = np.concatenate([np.roll(raw.train_images, k, axis=2) for k in range(copies)])
    labels = np.tile(raw.train_labels, copies)
    for name, array in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels)):
        header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
        (directory / name).write_bytes(header + array.tobytes())
    return images.nbytes


# VmHWM, this process's own peak: ru_maxrss survives exec, so a child would report its parent's.
PEAK = """
import json, re, sys
from mtljax import config
from mtljax.train import experiment
cfg = config.load_experiment("experiments/threshold.py", sys.argv[1:])
exp = experiment.build_experiment(cfg)
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) / 1024
print(json.dumps({"peak_mib": peak, "train": len(exp.splits["train"]), "streamed": exp.streamed}))
"""


def peak_memory(source: str, load: str) -> dict:
    """Peak RSS of a fresh process that builds threshold.py's experiment from `source`."""
    out = subprocess.run([sys.executable, "-c", PEAK, f"data.source={source}", f"data.load={load}",
                          "data.test_fraction=0.1"], cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def epoch_rate(run, epoch: int) -> float:
    """Training images/s of one epoch of `run` (its train calls only)."""
    from mtljax.train import loop

    t0 = time.perf_counter()
    sums, _ = loop.run_epoch(run, epoch, [])
    seconds = time.perf_counter() - t0
    return run.exp.steps_per_epoch * run.exp.cfg["train"]["batch_size"] / seconds


def speed(source: str, rounds: int) -> dict[str, list[float]]:
    """Alternating epochs of threshold.py in memory and streamed: images/s of each window."""
    from mtljax.train import experiment, loop

    runs = {}
    for load in ("memory", "stream"):
        cfg = config.load_experiment("experiments/threshold.py", [f"data.source={source}", f"data.load={load}"])
        run = loop.restore_or_init(experiment.build_experiment(cfg), Path(tempfile.mkdtemp()), False)
        loop.compile_calls(run)
        epoch_rate(run, 1)  # Warm-up: first-touch page faults, prefetch threads.
        runs[load] = run
    rates = {"memory": [], "stream": []}
    for k in range(rounds):
        for load in ("memory", "stream") if k % 2 == 0 else ("stream", "memory"):
            rates[load].append(epoch_rate(runs[load], 2 + k))
            print(f"round {k + 1} {load}: {rates[load][-1]:.0f} img/s", flush=True)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10, help="MNIST's training split this many times over")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--update", type=Path, help="the Markdown file whose stream section to rewrite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        big, one = Path(tmp) / "big", Path(tmp) / "one"
        big.mkdir(), one.mkdir()
        nbytes = write_idx(big, args.copies)
        write_idx(one, 1)
        peaks = {load: peak_memory(f"idx:{big}", load) for load in ("memory", "stream")}
        rates = speed(f"idx:{one}", args.rounds)
    train_bytes = peaks["memory"]["train"] * 28 * 28  # The training split's images, the ones that stream.
    per_byte = (peaks["memory"]["peak_mib"] - peaks["stream"]["peak_mib"]) * 2**20 / train_bytes
    med = {k: float(np.median(v)) for k, v in rates.items()}
    lines = [
        f"Measured by `python -m benchmarks.stream --copies {args.copies} --rounds {args.rounds}` "
        f"({time.strftime('%Y-%m-%d')}, 2-core CPU):", "",
        "| | in memory | streamed |", "|---|---|---|",
        f"| peak RSS building threshold.py over {args.copies}× MNIST ({nbytes / 2**20:.0f} MiB of images) | "
        f"{peaks['memory']['peak_mib']:.0f} MiB | {peaks['stream']['peak_mib']:.0f} MiB |",
        f"| threshold.py's train calls, batch 64, MNIST's 54,000 images (median of {args.rounds} alternating epochs) | "
        f"{med['memory']:.0f} img/s | {med['stream']:.0f} img/s ({med['stream'] / med['memory']:.2f}×) |", "",
        f"The in-memory path held {per_byte:.2f} bytes of memory per byte of training images "
        f"({peaks['memory']['train']:,} of them, {train_bytes / 2**20:.0f} MiB) more than the streamed one (each window: {', '.join(f'{r:.0f}' for r in rates['memory'])} in memory, "
        f"{', '.join(f'{r:.0f}' for r in rates['stream'])} streamed, img/s).",
    ]
    print("\n".join(lines))
    if args.update:
        results.update_readme(args.update, "\n".join(lines), section="stream")


if __name__ == "__main__":
    main()
