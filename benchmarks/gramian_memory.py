"""The Gramian engine's memory and time against the Jacobian path's, as T grows.

    python -m benchmarks.gramian_memory                          # prints the table
    python -m benchmarks.gramian_memory --update docs/performance.md   # and writes it there

For T = 3, 10 and 40 binary tasks (registered here, one linear head each: CelebA's shape of
problem) on the VGG and the MLP, batch 128: the trainer's own compiled train call (one step,
whole batches) with static weights (one backward pass of the summed loss: the floor), MGDA on the
Jacobian path (`mtl.engine: jacobian`, T×P held) and MGDA on the Gramian path (`mtl.engine:
gramian`). Memory is XLA's own accounting of the compiled call, `memory_analysis()`: its peak
temporary buffers (the arguments, parameters and optimizer state, are the same for all three).
Time per step: the median of 5 windows of 5 calls after compilation, on random data.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mtljax import config, models, results, tasks
from mtljax.train import schedules
from mtljax.train.epoch import make_epoch_fns, zero_sums
from mtljax.train.experiment import Experiment
from mtljax.train.state import create_state

BATCH = 128
COUNTS = (3, 10, 40)
BACKBONES = {"vgg": {"name": "vgg", "features": [32, 64, 128], "batchnorm": True},
             "mlp": {"name": "mlp", "features": [256, 256]}}
PATHS = {"plain (static)": {"strategy": "static"}, "jacobian (mgda)": {"strategy": "mgda", "engine": "jacobian"},
         "gramian (mgda)": {"strategy": "mgda", "engine": "gramian"}}


def attribute_tasks(t: int) -> list[str]:
    """T binary tasks `attr0..`, registered once (a bit of the digit each: labels of any kind)."""
    names = [f"attr{i}" for i in range(t)]
    for i, name in enumerate(names):
        if name not in tasks.TASKS:
            tasks.TASKS.register(name, tasks.classification(2, lambda raw, i=i: (raw["digit"] >> (i % 4)) & 1,
                                                            ("no", "yes")))
    return names


def compiled_step(model_cfg: dict, t: int, mtl: dict):
    """(the compiled one-step train call, its arguments) for T attribute tasks."""
    names = attribute_tasks(t)
    cfg = config.resolve({"tasks": names, "model": model_cfg, "mtl": mtl,
                          "train": {"batch_size": BATCH, "microbatch": 0, "steps_per_call": 1}})
    model = models.build_model(cfg["model"], {n: 2 for n in names})
    exp = Experiment(cfg=cfg, splits={}, model=model, tx=optax.adam(1e-3),
                     plateau=schedules.plateau_controller(1e-3, cfg["schedule"]), schedule=None,
                     steps_per_epoch=100, loss_weights={n: 1.0 for n in names})
    rng = np.random.default_rng(0)
    n = 4 * BATCH
    dataset = {"image": jnp.asarray(rng.integers(0, 256, (n, 28, 28, 1)), jnp.uint8),
               **{name: jnp.asarray(rng.integers(0, 2, n), jnp.int32) for name in names}}
    state = jax.vmap(lambda key: create_state(model, exp.tx, exp.plateau, key, (28, 28, 1), exp.strategy))(
        jax.random.split(jax.random.key(0), 1))
    train_fn, _ = make_epoch_fns(exp)
    idx = jnp.asarray(rng.permutation(n)[:BATCH].reshape(1, 1, BATCH), jnp.int32)
    args = (state, zero_sums(exp.tasks, 1), dataset, idx, jax.random.split(jax.random.key(1), 1))
    return train_fn.lower(*args).compile(), args


def measure(model_cfg: dict, t: int, mtl: dict) -> tuple[float, float]:
    """(peak temporary MiB, ms per step) of one path."""
    call, (state, sums, dataset, idx, keys) = compiled_step(model_cfg, t, mtl)
    temp = call.memory_analysis().temp_size_in_bytes / 2**20
    windows = []
    for _ in range(6):
        start = time.perf_counter()
        for _ in range(5):
            state, sums = call(state, sums, dataset, idx, keys)
        jax.block_until_ready(sums)
        windows.append((time.perf_counter() - start) / 5 * 1e3)
    return temp, statistics.median(windows[1:])


def table() -> str:
    rows = [f"Peak temporary memory of one compiled train step (XLA's `memory_analysis()`) and time per step, "
            f"batch {BATCH}, T binary tasks (`python -m benchmarks.gramian_memory`, {jax.devices()[0].platform}):", "",
            "| model | T | path | temp MiB | vs plain | ms/step | vs plain |", "|---|---|---|---|---|---|---|"]
    for label, model_cfg in BACKBONES.items():
        for t in COUNTS:
            plain = None
            for path, mtl in PATHS.items():
                temp, ms = measure(model_cfg, t, mtl)
                plain = plain or (temp, ms)
                rows.append(f"| {label} | {t} | {path} | {temp:,.1f} | {temp / plain[0]:.2f}x | {ms:,.1f} | "
                            f"{ms / plain[1]:.2f}x |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", type=Path, help="write the table into this Markdown file (gramian-memory markers)")
    args = parser.parse_args()
    text = table()
    print(text)
    if args.update:
        results.update_readme(args.update, text, section="gramian-memory")


if __name__ == "__main__":
    main()
