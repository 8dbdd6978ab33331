"""What each CPU speed measure of the train step buys: the step with all of them, and with one off.

    python benchmarks/ablate_step.py --update README.md   # batch 128, threshold model and marlon-sb CNN

Variants, each built in this one process and timed in alternating windows (this VM's speed drifts
by up to 2x between minutes, so separate runs cannot be compared): "all" (the default path),
"no fused first layer" (`ops.FUSE_MAX_CHANNELS = 0`: conv, ReLU and pool apart), "no crop"
(`ops.crop_for_pool` the identity: the odd conv row/column the pool drops is computed), and
"size-1 seed axis vmapped" (`parallel.over_replicas` replaced by `jax.vmap`). Prints the best and
median window of each, in images/s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mtljax import config, models, ops, parallel, results, schedules, steps, trainer

sys.path.insert(0, str(Path(__file__).parent))
from speed import MODELS  # noqa: E402

VARIANTS = {
    "all": {},
    "no fused first layer": {"FUSE_MAX_CHANNELS": 0},
    "no crop": {"crop_for_pool": lambda x: x},
    "size-1 seed axis vmapped": {"over_replicas": lambda fn, in_axes: jax.vmap(fn, in_axes=in_axes)},
}


def timer(model_cfg: dict, task_names: list[str], batch: int, k: int = 10):
    """A function timing one window of 8 train calls (k steps each) of a freshly compiled step."""
    cfg = config.resolve({"tasks": task_names, "model": model_cfg, "train": {"batch_size": batch}})
    model = models.build_model(cfg["model"], {t: 10 if t == "digit" else 2 for t in task_names})
    exp = trainer.Experiment(cfg=cfg, splits={}, model=model, tx=optax.adam(1e-3),
                             plateau=schedules.plateau_controller(1e-3, cfg["schedule"]), schedule=None,
                             steps_per_epoch=100, loss_weights={t: 1.0 for t in task_names})
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 8192)
    data = {"image": jnp.asarray(rng.integers(0, 256, (8192, 28, 28, 1)), jnp.uint8),
            "digit": jnp.asarray(labels, jnp.int32), "parity": jnp.asarray(labels % 2, jnp.int32),
            "threshold": jnp.asarray(labels >= 5, jnp.int32)}
    data = {key: v for key, v in data.items() if key == "image" or key in task_names}
    state = jax.jit(jax.vmap(lambda key: steps.create_state(model, exp.tx, exp.plateau, key, (28, 28, 1))))(
        jax.random.split(jax.random.key(0), 1))
    carry = {"state": state, "sums": trainer.zero_sums(task_names, 1)}
    idx = jnp.asarray(rng.permutation(8192)[:k * batch].reshape(1, k, batch).astype(np.int32))
    key = jax.random.split(jax.random.key(1), 1)
    train_fn = trainer.make_epoch_fns(exp)[0].lower(carry["state"], carry["sums"], data, idx, key).compile()

    def window(calls: int = 8) -> float:
        t = time.perf_counter()
        for _ in range(calls):
            carry["state"], carry["sums"] = train_fn(carry["state"], carry["sums"], data, idx, key)
        jax.block_until_ready(carry["sums"])
        return calls * k * batch / (time.perf_counter() - t)

    window(2)  # Warm-up.
    return window


def build_variant(changes: dict, model_cfg: dict, task_names: list[str], batch: int):
    """`timer` with `changes` applied to ops/parallel while the step is traced and compiled."""
    saved = {}
    for name, value in changes.items():
        module = parallel if name == "over_replicas" else ops
        saved[name] = (module, getattr(module, name))
        setattr(module, name, value)
    try:
        return timer(model_cfg, task_names, batch)
    finally:
        for name, (module, value) in saved.items():
            setattr(module, name, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--update", type=Path, help="README to rewrite between its ablation markers")
    args = parser.parse_args()
    lines = [f"batch {args.batch}, {args.rounds} alternating windows of 8 calls × 10 steps per variant", "",
             "| model | variant | best img/s | median img/s |", "|---|---|---|---|"]
    print("\n".join(lines))
    for name, overrides, task_names, _ in MODELS[:2]:  # The two cnn3 models: the ones the measures apply to.
        model_cfg = {**config.DEFAULTS["model"], **overrides}
        windows = {v: build_variant(changes, model_cfg, task_names, args.batch) for v, changes in VARIANTS.items()}
        rates = {v: [] for v in windows}
        for _ in range(args.rounds):
            for v, window in windows.items():
                rates[v].append(window())
        for v, r in rates.items():
            lines.append(f"| {name} | {v} | {max(r):.0f} | {statistics.median(r):.0f} |")
            print(lines[-1], flush=True)
    if args.update:
        results.update_readme(args.update, "\n".join(lines), section="ablation")


if __name__ == "__main__":
    main()
