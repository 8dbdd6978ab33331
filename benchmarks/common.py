"""Helpers the benchmark scripts share: the models every speed table measures, compiled train
calls timed in windows, the matmul peak, and the PyTorch twins' step rates (benchmarks/
torch_models.py, from the optional `bench` extra)."""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mtljax import config, models
from mtljax.train import parallel, schedules
from mtljax.train.epoch import make_epoch_fns, zero_sums
from mtljax.train.experiment import Experiment, resolve_steps_per_call
from mtljax.train.state import create_state

# (name, model overrides, tasks, image channels): every backbone of the registry, as the experiments use it.
MODELS = [
    ("threshold (cnn3, 3 heads)", {}, ["digit", "parity", "threshold"], 1),
    ("marlon-sb CNN (cnn3, 1 head)", {"features": [32, 64], "pool_last": True, "dropout": 0.5}, ["digit"], 1),
    ("vgg_parity (vgg, BN, 2 hidden heads)", {"name": "vgg", "features": [32, 64, 128], "batchnorm": True,
                                              "dropout": 0.4, "head_hidden": 128, "head_dropout": 0.4},
     ["digit", "parity"], 1),
    ("colored (skipcnn, BN, 28×28×3)", {"name": "skipcnn", "features": [32, 64], "dense": 128, "dropout": 0.3,
                                        "batchnorm": True}, ["digit", "color"], 3),
    # multimnist_<architecture>.py's models: each architecture on the same cnn3, 2 heads.
    *[(f"multimnist {arch} (cnn3, 2 heads)", {"features": [32, 64, 64], "architecture": arch}, ["left", "right"], 1)
      for arch in models.ARCHITECTURES.names()],
    ("mlp (784-128)", {"name": "mlp", "features": [128], "activation": "leaky_relu"}, ["digit"], 1),
    ("mlp_scratch (hand backprop)", {"name": "mlp_scratch", "features": [128], "activation": "leaky_relu"},
     ["digit"], 1),
]
BATCHES = (32, 128, 256)
TEN_WAY = ("digit", "left", "right")  # Tasks with 10 classes; the others have 2.


def head_sizes(task_names: list[str]) -> dict[str, int]:
    """Task -> number of outputs, as the datasets define them."""
    return {t: 10 if t in TEN_WAY else 2 for t in task_names}


def matmul_peak() -> float:
    """Best GFLOP/s of a 2048×2048 fp32 matmul, the practical peak of this machine."""
    a = jnp.asarray(np.random.default_rng(0).normal(size=(2048, 2048)), jnp.float32)
    dot = jax.jit(lambda a: a @ a)
    dot(a).block_until_ready()
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        dot(a).block_until_ready()
        best = max(best, 2 * 2048**3 / (time.perf_counter() - t) / 1e9)
    return best


def forward_flops(model, variables, shape) -> float:
    """FLOPs of one forward pass per image, as counted by XLA's cost analysis (plain XLA convs)."""
    compiled = jax.jit(lambda v, x: model.apply(v, x)).lower(variables, jnp.zeros(shape)).compile()
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return float(analysis["flops"]) / shape[0]


@dataclasses.dataclass
class TrainBench:
    """The trainer's compiled train call on random uint8 data, ready to time: `run(calls)` makes
    `calls` calls (cycling through `idx`) and returns images/s (images of every replica counted)."""

    call: Any
    state: Any
    sums: Any
    dataset: Any
    idx: list
    rng: Any
    images_per_call: int
    compile_s: float

    def run(self, calls: int) -> float:
        t = time.perf_counter()
        for c in range(calls):
            self.state, self.sums = self.call(self.state, self.sums, self.dataset, self.idx[c % len(self.idx)], self.rng)
        jax.block_until_ready(self.sums)
        return calls * self.images_per_call / (time.perf_counter() - t)


def train_bench(model_cfg: dict, task_names: list[str], batch: int, microbatch: int = -1, steps_per_call: int = -1,
                seeds: int = 1, mtl: dict | None = None, channels: int = 1, replicas: str = "auto") -> TrainBench:
    """A TrainBench of a registry model: `seeds` replicas held as `train.replicas` says, on every
    device (data parallel), `train.steps_per_call` steps per call as the trainer runs them."""
    dataset_name = "colored" if "color" in task_names else "multimnist" if "left" in task_names else "mnist"
    cfg = config.resolve({"tasks": task_names, "model": model_cfg, "mtl": mtl or {}, "data": {"dataset": dataset_name},
                          "train": {"batch_size": batch, "microbatch": microbatch, "steps_per_call": steps_per_call,
                                    "replicas": replicas}})
    model = models.build_model(cfg["model"], head_sizes(task_names))
    exp = Experiment(cfg=cfg, splits={}, model=model, tx=optax.adam(1e-3),
                     plateau=schedules.plateau_controller(1e-3, cfg["schedule"]), schedule=None,
                     steps_per_epoch=100, loss_weights={t: 1.0 for t in task_names})
    rng = np.random.default_rng(0)
    k = resolve_steps_per_call(cfg)  # Steps per jitted call, as the trainer runs them.
    n = max(8192, 2 * k * batch)  # Room for a call's k batches at every offset.
    labels = rng.integers(0, 10, n)
    dataset = {"image": jnp.asarray(rng.integers(0, 256, (n, 28, 28, channels)), jnp.uint8),
               "digit": jnp.asarray(labels, jnp.int32), "parity": jnp.asarray(labels % 2, jnp.int32),
               "threshold": jnp.asarray(labels >= 5, jnp.int32), "color": jnp.asarray(rng.integers(0, 2, n), jnp.int32),
               "left": jnp.asarray(labels, jnp.int32), "right": jnp.asarray(labels[::-1], jnp.int32)}
    dataset = {k: v for k, v in dataset.items() if k == "image" or k in task_names}
    rows = exp.strategy_rows()
    state = jax.vmap(lambda key: create_state(model, exp.tx, exp.plateau, key, (28, 28, channels), exp.strategy,
                                              rows=rows))(
        jax.random.split(jax.random.key(0), seeds))  # The trainer's functions take a leading seed axis.
    train_fn, _ = make_epoch_fns(exp)
    sums = zero_sums(exp.tasks, seeds)
    perm = rng.permutation(n).astype(np.int32)
    mesh = parallel.data_mesh()
    idx = [parallel.shard_batch(np.broadcast_to(perm[(c * k * batch) % (n - k * batch):][: k * batch].reshape(
        1, k, batch), (seeds, k, batch)).copy(), mesh) for c in range(64)]
    t = time.perf_counter()
    keys = jax.random.split(jax.random.key(1), seeds)
    state, sums, dataset, keys = parallel.replicate((state, sums, dataset, keys), mesh)
    call = train_fn.lower(state, sums, dataset, idx[0], keys).compile()
    return TrainBench(call, state, sums, dataset, idx, keys, k * batch * seeds, time.perf_counter() - t)


def median_rates(benches: dict, windows: int, images: int = 4096) -> dict:
    """Median images/s of each TrainBench, from `windows` rounds of one window each (about `images`
    images), taken in turn: alternating, the benches share this VM's speed phases."""
    rates = {key: [] for key in benches}
    for bench in benches.values():
        bench.run(2)  # Warm-up, not counted.
    for _ in range(windows):
        for key, bench in benches.items():
            rates[key].append(bench.run(max(2, images // bench.images_per_call)))
    return {key: statistics.median(r) for key, r in rates.items()}


def mtljax_step_rate(model_cfg: dict, task_names: list[str], batch: int, microbatch: int = -1,
                     steps_per_call: int = -1, seeds: int = 1, mtl: dict | None = None,
                     channels: int = 1) -> tuple[float, float]:
    """(images/s, compile seconds) of the trainer's jitted train call on random uint8 data, for
    `seeds` vmapped replicas (images of all of them counted) on every device (data parallel):
    the best of 5 windows after a warm-up window."""
    bench = train_bench(model_cfg, task_names, batch, microbatch, steps_per_call, seeds, mtl, channels)
    calls_per_window = max(2, 4096 // bench.images_per_call)
    bench.run(calls_per_window)  # Warm-up, not counted.
    return max(bench.run(calls_per_window) for _ in range(5)), bench.compile_s


def torch_step_rate(model_cfg: dict, task_names: list[str], batch: int, channels: int = 1) -> float | None:
    """images/s of the same network and step in PyTorch, or None without torch."""
    try:
        from benchmarks import torch_models
    except ImportError:
        return None
    return torch_models.step_rate(model_cfg, task_names, batch, channels)
