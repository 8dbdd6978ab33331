"""What limits the speedrun's training step on this CPU: its layers, its matmuls, its cores.

    python -m benchmarks.tables.speedrun_limits --update docs/performance.md   # about 2 minutes

For the network of experiments/speedrun.py (5×5 conv 1→24 fused with ReLU and pool, 3×3 conv
24→32 → ReLU → pool, dense 800→256→10), one batch of 256 as the trainer runs it (a `lax.scan`
over micro-batches of 32, LLVM at -O1):
- each layer's forward and backward pass (the kernel gradients, and the input gradient where the
  layer below needs it), ms per batch, its FLOPs counted from the shapes, GFLOP/s and % of the
  2048² matmul peak; beside them the trainer's whole train call (`speed.train_bench`);
- the three matmuls of the 3×3 convolution alone (forward P·W, weight gradient Pᵀ·dY, patch
  gradient dY·Wᵀ), at a micro-batch's shapes, in the same scan;
- the train call's images/s on both cores and on one (a fresh process pinned to core 0, in
  alternating rounds).
Medians of alternating windows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __name__ == "__main__" and "--one-rate" in sys.argv and "--one-core" in sys.argv:
    os.sched_setaffinity(0, {0})  # Before XLA starts its threads.

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

from mtljax import config, results  # noqa: E402
from mtljax.models import ops  # noqa: E402
from mtljax.train import experiment  # noqa: E402

from benchmarks import common as speed

EXPERIMENT = Path(__file__).resolve().parents[2] / "experiments" / "speedrun.py"
BATCH, MICRO = 256, 32


def network() -> tuple[dict, int, int, int, int]:
    """(model config, first kernel size, conv widths c1 and c2, dense width) of the speedrun."""
    cfg = config.thaw(config.load_experiment(EXPERIMENT)["model"])
    (c1, c2), k = cfg["features"], cfg["first_kernel"]
    return cfg, k, c1, c2, cfg["dense"]


def sides(k: int) -> tuple[int, int]:
    """(the first layer's pooled output side, the second conv's output side after crop_for_pool)
    for 28×28 inputs and a k×k first kernel: (12, 10) for k = 5."""
    s1 = (28 - k + 1) // 2
    return s1, s1 - 2 - (s1 - 2) % 2


def layer_cases(key: jax.Array) -> dict[str, tuple]:
    """name -> (loss(params, x), params, x of BATCH/MICRO micro-batches, grad wrt x?, FLOPs per image)."""
    _, k, c1, c2, dense = network()
    s1, o2 = sides(k)
    flat = (o2 // 2) ** 2 * c2
    keys = jax.random.split(key, 7)
    n = BATCH // MICRO

    def normal(i, shape, scale=1.0):
        return scale * jax.random.normal(keys[i], shape)

    def conv1(p, x):
        return (ops.conv_relu_pool(x, p[0], p[1]) ** 2).sum()

    def conv2(p, x):
        y = ops.conv_matmul(ops.crop_for_pool(x), p[0]) + p[1]
        return (ops.max_pool_2x2(jax.nn.relu(y)) ** 2).sum()

    def head(p, x):
        return jax.nn.logsumexp(jax.nn.relu(x @ p[0]) @ p[1], -1).sum()

    f1 = 2 * s1 * s1 * (k + 1) ** 2 * 4 * c1  # Fused: (k+1)² blocks × the kernel at 4 offsets.
    f2 = 2 * o2 * o2 * 9 * c1 * c2
    f3 = 2 * (flat * dense + dense * 10)
    return {
        f"conv {k}×{k} 1→{c1} + ReLU + pool (fused)": (conv1, (normal(0, (k, k, 1, c1), 0.2), jnp.zeros(c1)),
                                                      normal(1, (n, MICRO, 28, 28, 1)), False, 2 * f1),
        f"conv 3×3 {c1}→{c2} + ReLU + pool": (conv2, (normal(2, (3, 3, c1, c2), 0.1), jnp.zeros(c2)),
                                              normal(3, (n, MICRO, s1, s1, c1)), True, 3 * f2),
        f"dense {flat}→{dense}→10": (head, (normal(4, (flat, dense), 0.03), normal(5, (dense, 10), 0.05)),
                                     normal(6, (n, MICRO, flat)), True, 3 * f3),
    }


def scanned(fn):
    """A jitted function running `fn(*args)` on each micro-batch of the last argument (an array,
    or a tuple of arrays scanned together) in a scan."""
    def step(*args):
        *fixed, xs = args
        def body(acc, x):
            return acc + sum(jnp.sum(v) for v in jax.tree.leaves(fn(*fixed, x))), None
        return lax.scan(body, 0.0, xs)[0]
    return jax.jit(step, compiler_options=experiment.compiler_options())


def median_ms(fns: dict, windows: int, calls: int = 10) -> dict:
    """Median ms per call of each (jitted function, args), in alternating windows of `calls` calls."""
    times = {key: [] for key in fns}
    for fn, args in fns.values():
        jax.block_until_ready(fn(*args))
    for _ in range(windows):
        for key, (fn, args) in fns.items():
            t = time.perf_counter()
            for _ in range(calls):
                out = fn(*args)
            jax.block_until_ready(out)
            times[key].append(1e3 * (time.perf_counter() - t) / calls)
    return {key: statistics.median(v) for key, v in times.items()}


def matmul_cases(key: jax.Array) -> dict[str, tuple]:
    """The 3×3 conv's three matmuls at a micro-batch's shapes: name -> (fn, args, FLOPs per image)."""
    _, k, c1, c2, _ = network()
    rows, kc = MICRO * sides(k)[1] ** 2, 9 * c1
    keys = jax.random.split(key, 3)
    p = jax.random.normal(keys[0], (BATCH // MICRO, rows, kc))
    dy = jax.random.normal(keys[1], (BATCH // MICRO, rows, c2))
    w = jax.random.normal(keys[2], (kc, c2))
    flops = 2 * rows // MICRO * kc * c2
    return {f"P·W ({rows}×{kc} · {kc}×{c2})": (scanned(lambda w, x: x @ w), (w, p), flops),
            f"Pᵀ·dY ({kc}×{rows} · {rows}×{c2})": (scanned(lambda x: x[0].T @ x[1]), ((p, dy),), flops),
            f"dY·Wᵀ ({rows}×{c2} · {c2}×{kc})": (scanned(lambda w, x: x @ w.T), (w, dy), flops)}


def layer_table(windows: int, peak: float) -> list[str]:
    """The Markdown rows of every layer, the train call and the conv's matmuls."""
    key = jax.random.key(0)
    cases = layer_cases(key)
    fns = {name: (scanned(jax.grad(loss, argnums=(0, 1) if dx else 0)), (params, x))
           for name, (loss, params, x, dx, _) in cases.items()}
    mm = matmul_cases(jax.random.fold_in(key, 1))
    fns |= {name: (fn, args) for name, (fn, args, _) in mm.items()}
    bench = speed.train_bench(network()[0], ["digit"], BATCH, steps_per_call=1)
    fns["train call"] = (lambda: bench.run(1), ())  # Blocks on its own result.
    ms = median_ms(fns, windows)
    rows, total = [], 0.0
    for name, (_, _, _, _, flops) in cases.items():
        rows.append(_row(name, ms[name], flops, peak))
        total += ms[name]
    rows.append(f"| the layers together | {total:.1f} | | | |")
    rows.append(f"| the train call (1 step, Adam, metrics) | {ms['train call']:.1f} | | | |")
    rows += [_row(f"matmul {name}", ms[name], flops, peak) for name, (_, _, flops) in mm.items()]
    return rows


def _row(name: str, ms: float, flops_per_image: float, peak: float) -> str:
    gflops = flops_per_image * BATCH / ms / 1e6
    return f"| {name} | {ms:.1f} | {flops_per_image / 1e6:.2f} | {gflops:.0f} | {100 * gflops / peak:.0f} % |"


def one_rate() -> float:
    """The speedrun's train call, images/s (this process: pinned to one core with --one-core)."""
    bench = speed.train_bench(network()[0], ["digit"], BATCH)
    bench.run(2)
    return statistics.median(bench.run(max(2, 4096 // bench.images_per_call)) for _ in range(5))


def core_rows(rounds: int) -> list[str]:
    """Images/s of the train call on both cores and on one, fresh processes in alternating rounds."""
    rates = {"both cores": [], "one core": []}
    for _ in range(rounds):
        for label, flag in (("both cores", []), ("one core", ["--one-core"])):
            out = subprocess.run([sys.executable, __file__, "--one-rate", *flag], check=True, capture_output=True,
                                 text=True).stdout
            rates[label].append(json.loads(out.strip().splitlines()[-1])["rate"])
    both, one = (statistics.median(rates[k]) for k in ("both cores", "one core"))
    return [f"train call (10 steps a call, loop of micro-batches): {both:.0f} img/s on both cores, {one:.0f} on "
            f"one ({both / one:.2f}x; medians of {rounds} alternating fresh processes)"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=2, help="fresh-process rounds of the cores comparison (0: none)")
    parser.add_argument("--update", type=Path, help="the Markdown file to rewrite between its speedrun-limits markers")
    parser.add_argument("--one-rate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--one-core", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_rate:
        print(json.dumps({"rate": one_rate()}))
        return
    peak = speed.matmul_peak()
    lines = [f"device: {jax.devices()[0].device_kind}, jax {jax.__version__}; matmul peak (2048² fp32): {peak:.0f} "
             f"GFLOP/s; batch {BATCH} as micro-batches of {MICRO} in a scan; median of {args.windows} alternating "
             "windows", "", "| part (forward and backward) | ms per batch | MFLOP per image | GFLOP/s | % of peak |",
             "|---|---|---|---|---|"]
    lines += layer_table(args.windows, peak)
    print("\n".join(lines), flush=True)
    if args.rounds:
        lines += ["", *core_rows(args.rounds)]
        print(lines[-1])
    if args.update:
        results.update_readme(args.update, "\n".join(lines), section="speedrun-limits")


if __name__ == "__main__":
    main()
