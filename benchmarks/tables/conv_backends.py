"""XLA:CPU's own convolutions against mtljax's matmul convolution and PyTorch's, layer by layer.

    python -m benchmarks.tables.conv_backends --update docs/performance.md   # about 4 minutes

XLA:CPU (jax 0.10) hands convolutions to YNNPACK by default. With YNNPACK kept for dots only
(compile option `xla_cpu_experimental_ynn_fusion_type`), XLA runs them with Eigen instead. This
times, for the 3×3 SAME convolutions of the skip-CNN and VGG at batch 128, one jitted forward and
backward pass (the gradients of the kernel and, except for a first layer, of the input) of:
`ops.conv_matmul` with the backbone's chunks, XLA's convolution with each of the two libraries,
and PyTorch's `conv2d` (timed after them). Then the same for whole models (the loss's forward and
backward, one jitted call, no optimizer), and one layer run four times inside a `lax.scan`, as the
trainer's steps run (batch 16, two windows: XLA's convolution is slow there). Medians of
alternating windows.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
from jax import lax

from mtljax import config, models, results
from mtljax.models import backbones, ops
from mtljax.train import experiment

from benchmarks import common as speed

O1 = experiment.compiler_options() or {}  # What mtljax's programs use (on CPU: LLVM at -O1).
EIGEN = {**O1, "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}
CHUNK = {"skipcnn": backbones.SkipCNN.conv_chunk, "vgg": backbones.VGG.conv_chunk}  # Their training chunks.
# (model, size, in channels, out channels, first layer): the distinct layers of both models.
LAYERS = [("skipcnn", 28, 3, 32, True), ("skipcnn", 28, 32, 32, False), ("skipcnn", 14, 32, 64, False),
          ("skipcnn", 14, 64, 64, False), ("vgg", 28, 1, 32, True), ("vgg", 14, 32, 64, False),
          ("vgg", 7, 64, 128, False)]


def timed(fns: dict, args: dict, windows: int) -> dict:
    """Median seconds per call of each jitted function on its arguments, in alternating windows."""
    for key, fn in fns.items():
        jax.block_until_ready(fn(*args[key]))
    times = {key: [] for key in fns}
    for _ in range(windows):
        for key, fn in fns.items():
            t = time.perf_counter()
            jax.block_until_ready(fn(*args[key]))
            times[key].append(time.perf_counter() - t)
    return {key: statistics.median(t) for key, t in times.items()}


def layer_grad(conv, first: bool):
    """x, kernel, w -> the gradients of sum(conv(pad(x), kernel) · w)."""
    def loss(x, kernel, w):
        return (conv(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), kernel) * w).sum()
    return jax.grad(loss, (1,) if first else (0, 1))


def torch_layer_ms(batch: int, size: int, cin: int, cout: int, first: bool, windows: int) -> float | None:
    """Median ms of PyTorch's conv2d forward and backward on the same layer, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    x = torch.randn(batch, cin, size, size, requires_grad=not first)
    conv, w = torch.nn.Conv2d(cin, cout, 3, padding=1, bias=False), torch.randn(batch, cout, size, size)
    times = []
    for _ in range(windows + 2):
        t = time.perf_counter()
        (conv(x) * w).sum().backward()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times[2:])


def layer_row(batch: int, layer: tuple, windows: int) -> str:
    """One table row: a layer's forward and backward, ms, by each implementation."""
    model, size, cin, cout, first = layer
    chunk = CHUNK[model]
    keys = jax.random.split(jax.random.key(0), 3)
    args = (jax.random.normal(keys[0], (batch, size, size, cin)), 0.1 * jax.random.normal(keys[1], (3, 3, cin, cout)),
            jax.random.normal(keys[2], (batch, size, size, cout)))
    fns = {"matmul": jax.jit(layer_grad(lambda x, k: ops.conv_matmul(x, k, chunk), first), compiler_options=O1),
           "ynn": jax.jit(layer_grad(ops.conv_xla, first), compiler_options=O1),
           "eigen": jax.jit(layer_grad(ops.conv_xla, first), compiler_options=EIGEN)}
    ms = {key: 1e3 * s for key, s in timed(fns, {key: args for key in fns}, windows).items()}
    torch_ms = torch_layer_ms(batch, size, cin, cout, first, windows)
    torch_cell = f"{torch_ms:.1f}" if torch_ms else "n/a"
    return (f"| {model} | {size}×{size}, {cin}→{cout}{' (first)' if first else ''} | {chunk} | {ms['matmul']:.1f} | "
            f"{ms['ynn']:.1f} | {ms['eigen']:.1f} | {torch_cell} | {ms['matmul'] / ms['eigen']:.2f} |")


def model_grad(entry: tuple, impl: str, batch: int):
    """(jitted function, arguments) of the forward and backward pass of a speed.py model's loss."""
    _, overrides, task_names, channels = entry
    cfg = config.resolve({"tasks": task_names, "model": {**overrides, "conv_impl": impl},
                          "data": {"dataset": "colored" if channels == 3 else "mnist"}})
    model = models.build_model(cfg["model"], speed.head_sizes(task_names))
    x = jax.random.normal(jax.random.key(0), (batch, 28, 28, channels))
    variables = model.init({"params": jax.random.key(1), "dropout": jax.random.key(2)}, x, train=False)

    def loss(params):
        outputs, _ = model.apply({**variables, "params": params}, x, train=True, mutable=["batch_stats"],
                                 rngs={"dropout": jax.random.key(3)})
        return sum(-jax.nn.log_softmax(out)[:, 0].mean() for out in outputs.values())
    return jax.jit(jax.grad(loss), compiler_options=O1 if impl == "matmul" else EIGEN), (variables["params"],)


def model_row(batch: int, entry: tuple, windows: int) -> str:
    """One table row: images/s of a model's forward and backward with each convolution."""
    fns, args = {}, {}
    for impl in ("matmul", "xla"):
        fns[impl], args[impl] = model_grad(entry, impl, batch)
    rate = {key: batch / s for key, s in timed(fns, args, windows).items()}
    return f"| {entry[0]} | {batch} | {rate['matmul']:.0f} | {rate['xla']:.0f} | {rate['xla'] / rate['matmul']:.2f} |"


def scan_row(batch: int, windows: int) -> str:
    """The skip-CNN's 32→32 layer four times in a lax.scan (as a train call runs its steps), ms a step."""
    grad = {"matmul": layer_grad(lambda x, k: ops.conv_matmul(x, k, CHUNK["skipcnn"]), False),
            "eigen": layer_grad(ops.conv_xla, False)}
    keys = jax.random.split(jax.random.key(0), 2)
    xs, kernel = jax.random.normal(keys[0], (4, batch, 28, 28, 32)), 0.1 * jax.random.normal(keys[1], (3, 3, 32, 32))

    def loop(g):
        def body(kernel, x):
            dx, dk = g(x, kernel, x)
            return kernel - 1e-6 * dk, dx.sum()
        return lambda kernel, xs: lax.scan(body, kernel, xs)
    fns = {"matmul": jax.jit(loop(grad["matmul"]), compiler_options=O1),
           "eigen": jax.jit(loop(grad["eigen"]), compiler_options=EIGEN)}
    ms = {key: 1e3 * s / 4 for key, s in timed(fns, {key: (kernel, xs) for key in fns}, windows).items()}
    return f"| skipcnn 28×28, 32→32, in a 4-step lax.scan | {batch} | {ms['matmul']:.1f} | {ms['eigen']:.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--update", type=Path, help="the Markdown file to rewrite between its conv-backends markers")
    args = parser.parse_args()
    lines = [f"device: {jax.devices()[0].device_kind}, jax {jax.__version__}; median of {args.windows} alternating "
             "windows; forward and backward, ms", "",
             "| model | layer | chunk | matmul (chunked) | XLA, YNNPACK (default) | XLA, Eigen | PyTorch | "
             "matmul / Eigen |", "|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for layer in LAYERS:
        lines.append(layer_row(args.batch, layer, args.windows))
        print(lines[-1], flush=True)
    lines += ["", "| model | batch | matmul img/s | XLA, Eigen img/s | Eigen / matmul |", "|---|---|---|---|---|"]
    for entry in speed.MODELS:
        if entry[1].get("name") in ("vgg", "skipcnn"):
            lines.append(model_row(args.batch, entry, args.windows))
            print(lines[-1], flush=True)
    lines += ["", "| layer | batch | matmul ms a step | XLA, Eigen ms a step |", "|---|---|---|---|",
              scan_row(16, 2)]
    print("\n".join(lines[-3:]), flush=True)
    if args.update:
        results.update_readme(args.update, "\n".join(lines), section="conv-backends")


if __name__ == "__main__":
    main()
