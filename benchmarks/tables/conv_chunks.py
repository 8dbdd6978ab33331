"""What chunked convolutions buy the BatchNorm models (vgg, skipcnn), against PyTorch.

    python -m benchmarks.tables.conv_chunks --update docs/performance.md

BatchNorm models cannot be micro-batched, so their training convolutions run the batch in chunks
of `conv_chunk` examples (`ops.conv_matmul`). For each model and batch size, the step with the
backbone's chunks and with none (`conv_chunk = 0`) are built in this one process and timed in
alternating windows (median img/s), beside the PyTorch twin (benchmarks/torch_models.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mtljax import models, results
from mtljax.models import backbones

from benchmarks import common as speed

CLASSES = {"vgg": backbones.VGG, "skipcnn": backbones.SkipCNN}


def row(name: str, overrides: dict, task_names: list[str], channels: int, batch: int, windows: int) -> str:
    """One table row: median img/s without and with chunks, and both against PyTorch."""
    cls = CLASSES[overrides["name"]]
    chosen, model_cfg = cls.conv_chunk, models.default_config(**overrides)
    benches = {}
    try:
        for label, chunk in (("whole", 0), ("chunked", chosen)):
            cls.conv_chunk = chunk  # Read while the step is traced.
            benches[label] = speed.train_bench(model_cfg, task_names, batch, channels=channels)
    finally:
        cls.conv_chunk = chosen
    rates = speed.median_rates(benches, windows, images=2048)
    whole, chunked = rates["whole"], rates["chunked"]
    torch_rate = speed.torch_step_rate(model_cfg, task_names, batch, channels)
    vs = (lambda r: f"{r / torch_rate:.2f}x") if torch_rate else (lambda r: "n/a")
    return (f"| {name} | {batch} | {chosen} | {whole:.0f} | {chunked:.0f} | {chunked / whole:.2f} | "
            f"{torch_rate or 0:.0f} | {vs(whole)} | {vs(chunked)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--windows", type=int, default=6)
    parser.add_argument("--update", type=Path, help="the Markdown file to rewrite between its conv-chunks markers")
    args = parser.parse_args()
    lines = [f"median of {args.windows} alternating windows, img/s", "",
             "| model | batch | chunk | no chunks | chunks | chunks / none | PyTorch | none / PyTorch | chunks / PyTorch |",
             "|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines))
    for batch in args.batches:
        for name, overrides, task_names, channels in speed.MODELS:
            if overrides.get("name") in CLASSES:
                lines.append(row(name, overrides, task_names, channels, batch, args.windows))
                print(lines[-1], flush=True)
    if args.update:
        results.update_readme(args.update, "\n".join(lines), section="conv-chunks")


if __name__ == "__main__":
    main()
