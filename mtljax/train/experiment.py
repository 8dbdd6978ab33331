"""What a config builds: the data on device, the model, the optimizer and the train step's spec.

`build_experiment(cfg)` is the one place where a validated config becomes objects; everything
after it (the loop, evaluation, the commands) reads the `Experiment`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp

from mtljax import data, models, tasks
from mtljax.data import compose, stream
from mtljax.models import encode, ops
from mtljax.mtl import strategies
from mtljax.registry import Option
from mtljax.train import checkpoint, optim, schedules, sweeps
from mtljax.train.state import TrainState, create_state
from mtljax.train.step import StepSpec

# Config `train.*`.
TRAIN_OPTIONS: dict[str, Option] = {
    "epochs": Option(10, "passes over the training split", positive=True),
    "batch_size": Option(64, "examples per train step", positive=True),
    "microbatch": Option(-1, "> 0: accumulate each batch's gradient over micro-batches of this size; 0: off; "
                         "-1: the backbone's CPU micro-batch on CPU (32 for the convolutional ones), else off"),
    "eval_batch_size": Option(-1, "-1: 32 on CPU (its activations stay in cache), 1000 elsewhere"),
    "steps_per_call": Option(-1, "train steps per jitted call (a lax.scan); -1: 10, or 1 for XLA convs on CPU"),
    "replicas": Option("auto", "how seeds and sweep points share one program: 'vmap' (batched), 'loop' (one "
                       "after another inside it); 'auto': loop on CPU, vmap elsewhere", choices=("auto", "vmap", "loop")),
    "monitor": Option("val/loss", "metric of the best checkpoint and early stopping"),
    "monitor_mode": Option("min", "'min' or 'max'", choices=("min", "max")),
    "early_stopping_patience": Option(0, "epochs without improvement before stopping; 0: never", minimum=0),
    "restore_best": Option(True, "test metrics from the best epoch's parameters"),
    "keep_checkpoints": Option(3, "latest checkpoints kept", positive=True),
    "freeze": Option([], "top-level parameter subtrees kept fixed ('backbone', 'head_<task>', 'shared': those "
                     "every task shares)"),
    "nonfinite": Option("stop", "a NaN/Inf loss or gradient: 'stop' the run naming step, epoch and task, "
                        "or 'skip' such steps (the state is left as it was) and count them", choices=("stop", "skip")),
    "label_smoothing": Option(0.0, "classification tasks train against targets mixed this much with the uniform "
                              "distribution; evaluation losses stay plain cross-entropy", minimum=0, below_one=True),
    "ema_decay": Option(0.0, "> 0: evaluate, checkpoint and transfer an exponential moving average of the "
                        "parameters and BatchNorm statistics (decay per step, e.g. 0.999)", minimum=0, below_one=True),
}
# Config `init.*`: transfer learning.
INIT_OPTIONS: dict[str, Option] = {
    "run": Option(None, "a run directory (or 'stage:<name>', an earlier stage) to take parameters from",
                  nullable=str),
    "params": Option(["shared"], "top-level parameter subtrees taken from its best checkpoint; 'shared': "
                     "those every task shares (hard sharing: 'backbone')"),
}


@dataclasses.dataclass(frozen=True)
class Experiment:
    """What a config builds: data, model, optimizer and the compiled-to-be step functions."""

    cfg: Mapping[str, Any]
    splits: dict[str, data.Split]
    model: Any
    tx: Any
    plateau: Any
    schedule: Callable
    steps_per_epoch: int
    loss_weights: dict[str, float]

    configure: Callable | None = None  # hyper -> (model, tx), for sweeps (see `configure`).
    data_info: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # Sources, sizes, test split.

    @property
    def tasks(self) -> dict[str, tasks.Task]:
        """Task name -> Task, in config order."""
        return {t: tasks.get(t, self.cfg) for t in self.cfg["tasks"]}

    @property
    def streamed(self) -> bool:
        """Whether the training images stream from their files (`data.load`)."""
        return isinstance(self.splits["train"].images, stream.LazyImages)

    @functools.cached_property
    def strategy(self) -> strategies.Strategy:
        """The configured MTL strategy, resolved once (`strategies.resolve`)."""
        cfg = self.cfg
        return strategies.resolve(cfg["mtl"], len(self.tasks), resolve_microbatch(cfg), cfg["train"]["batch_size"])

    def step_spec(self) -> StepSpec:
        """What the train step is built from (mtljax/train/step.py)."""
        cfg = self.cfg
        smoothed = {t: task.smoothed(cfg["train"]["label_smoothing"]) for t, task in self.tasks.items()}
        return StepSpec(model=self.model, tx=self.tx, tasks=smoothed, loss_weights=self.loss_weights,
                        strategy=self.strategy, mtl=cfg["mtl"], microbatch=resolve_microbatch(cfg),
                        augment=cfg["augment"], configure=self.configure, steps_per_epoch=self.steps_per_epoch,
                        compose=compose.composer(cfg["data"]), ema_decay=cfg["train"]["ema_decay"],
                        shared=tuple(self.model.shared_params()), condition=cfg["pareto"]["condition"],
                        alpha=cfg["pareto"]["alpha"])

    @property
    def points(self) -> list[dict[str, float]]:
        """The replicas' points (sweeps.points: the sweep's grid, preference rays); [{}] for none."""
        return sweeps.points(self.cfg)

    @property
    def seeds(self) -> list[int]:
        """The seed of each replica: `seed`, `seed + 1`, ... (`seeds` of them), for every point."""
        return [self.cfg["seed"] + k for _ in self.points for k in range(self.cfg["seeds"])]

    def init_state(self) -> TrainState:
        """The initial TrainState of every replica, stacked on a leading replica axis."""
        keys = jnp.stack([jax.random.fold_in(jax.random.key(seed), 0) for seed in self.seeds])
        image_shape = sweeps.input_shape(self.cfg)
        strategy = self.strategy
        # One compiled program: run eagerly, flax's initialisers compile ~100 small ops one by one.
        ema = self.cfg["train"]["ema_decay"] > 0
        rows = self.strategy_rows()
        create = jax.vmap(lambda key: create_state(self.model, self.tx, self.plateau, key, image_shape, strategy,
                                                   ema, rows))
        state = jax.jit(create, compiler_options=compiler_options())(keys)
        hyper = {key: jnp.asarray(v) for key, v in sweeps.replica_values(self.points, self.cfg["seeds"]).items()}
        state = state.replace(hyper=hyper)
        init = self.cfg["init"]
        if not init["run"]:
            return state
        return graft_params(state, init["run"], models.expand_shared(self.model, init["params"]))

    def strategy_rows(self) -> int:
        """What the strategy's state is sized for (`create_state`'s `rows`): with `mtl.rep_grad` B·D,
        the length of a task's row of representation gradients; else 0 (the shared parameters)."""
        if not self.cfg["mtl"]["rep_grad"]:
            return 0
        shape = (1, *sweeps.input_shape(self.cfg))
        features = jax.eval_shape(lambda: self.model.apply(self.model.init(jax.random.key(0), jnp.zeros(shape)),
                                                           jnp.zeros(shape), train=False, method=encode))
        return self.cfg["train"]["batch_size"] * math.prod(features.shape[1:])

    def dropout_rng(self) -> jax.Array:
        """Each seed's base key of the train steps (each step folds in its step number)."""
        return jnp.stack([jax.random.fold_in(jax.random.key(seed), 1) for seed in self.seeds])


def compiler_options() -> dict[str, int] | None:
    """XLA options of mtljax's programs (initial state, train call, evaluation): on CPU, LLVM at
    -O1 (else None, the backend's defaults): it compiled sooner than XLA's default -O2 and the
    train call ran as fast or faster (docs/performance.md, "Why the defaults"). The BatchNorm
    models' float results differ from -O2's in the last bit (the order of a few float operations),
    so their trajectories differ as with any such change.

    None as well when JAX was asked to skip most optimizations (`JAX_DISABLE_MOST_OPTIMIZATIONS=1`,
    as the test suite runs): that request, made for quick compiles, wins."""
    if jax.default_backend() != "cpu" or jax.config.read("jax_disable_most_optimizations"):
        return None
    return {"xla_backend_optimization_level": 1}


def graft_params(state: TrainState, run: str, names: Sequence[str]) -> TrainState:
    """Replaces the parameter subtrees `names` of the state by those of run directory `run`'s best
    checkpoint (transfer learning, config `init`). The optimizer state is unchanged: it does not
    depend on values.

    Raises:
      checkpoint.CheckpointError: no such checkpoint, or a subtree of another shape.
    """
    source = checkpoint.RunCheckpoints(Path(run))
    try:
        loaded = source.load_params("best")
    finally:
        source.close()
    params = dict(state.params)
    n_replicas = jax.tree.leaves(state.params)[0].shape[0]
    for name in [n for n in names if n in params or n in loaded]:
        # Both sides carry a leading replica axis; one source replica is shared by every replica here.
        ours = jax.tree.map(lambda a: a.shape[1:], params.get(name))
        theirs = jax.tree.map(lambda a: a.shape[1:], loaded.get(name))
        source_seeds = {a.shape[0] for a in jax.tree.leaves(loaded.get(name))}
        if ours != theirs or not source_seeds <= {1, n_replicas}:
            raise checkpoint.CheckpointError(f"init.params {name!r}: {run} has shapes {theirs} "
                                             f"({source_seeds} seeds), this model {ours} ({n_replicas} replicas)")
        params[name] = jax.tree.map(lambda a: jnp.broadcast_to(jnp.asarray(a), (n_replicas, *a.shape[1:])), loaded[name])
    if state.ema:  # The average starts from the grafted parameters too (own buffers: both are donated).
        state = state.replace(ema={**state.ema, "params": jax.tree.map(jnp.copy, params)})
    return state.replace(params=params)


def build_experiment(cfg: Mapping[str, Any]) -> Experiment:
    """Loads the data and builds model and optimizer for a validated config."""
    # On device once (as uint8): the host copies are dropped here (jnp.asarray copies on CPU).
    host_splits, data_info = data.load_splits(cfg)
    # Streamed training images stay in their files (mtljax/data/stream.py), their labels on the host.
    splits = {name: split if isinstance(split.images, stream.LazyImages) else
              data.Split(jnp.asarray(split.images), {t: jnp.asarray(y) for t, y in split.labels.items()})
              for name, split in host_splits.items()}
    del host_splits
    train_cfg = cfg["train"]
    steps_per_epoch = len(splits["train"]) // train_cfg["batch_size"]
    if steps_per_epoch == 0:
        raise ValueError(f"train.batch_size {train_cfg['batch_size']} exceeds the "
                         f"{len(splits['train'])} training examples")
    lr = cfg["optimizer"]["lr"]
    schedule = schedules.lr_schedule(lr, cfg["schedule"], steps_per_epoch, train_cfg["epochs"])
    swept = cfg["sweep"] and any(not k.startswith(("loss_weights.", "augment.")) for k in cfg["sweep"])
    # The first point's values build the initial state: parameter and optimizer-state structures
    # do not depend on the swept values.
    model, tx = configure(cfg, schedule, sweeps.grid(cfg["sweep"])[0])
    exp = Experiment(
        cfg=cfg,
        splits=splits,
        model=model,
        tx=tx,
        plateau=schedules.plateau_controller(lr, cfg["schedule"]),
        schedule=schedule,
        steps_per_epoch=steps_per_epoch,
        loss_weights={t: float(cfg["loss_weights"].get(t, 1.0)) for t in cfg["tasks"]},
        configure=functools.partial(configure, cfg, schedule) if swept else None,
        data_info=data_info,
    )
    if exp.streamed and strategies.get(cfg["mtl"]["strategy"]).lookahead is not None:
        raise ValueError(f"mtl.strategy: {cfg['mtl']['strategy']!r} draws look-ahead batches from data in memory; "
                         "here the training images stream from their files (set data.load: memory)")
    return exp


def configure(cfg: Mapping[str, Any], schedule: Callable, values: Mapping[str, Any]) -> tuple[Any, Any]:
    """The model and optax chain of `cfg` with the swept `values` ({dotted key: float or tracer})
    put in: dropout rates into the model, weight decay into the optimizer, and a learning rate as
    the factor lr / lr₀ on the updates (optim.scale_lr). Loss weights and augmentation are read by
    the train step itself."""
    model_cfg = {**cfg["model"], **{k[6:]: v for k, v in values.items() if k.startswith("model.")}}
    opt_cfg = dict(cfg["optimizer"])
    if "optimizer.weight_decay" in values:  # As an array, so the decay stays in the chain even at 0.
        opt_cfg["weight_decay"] = jnp.asarray(values["optimizer.weight_decay"], jnp.float32)
    heads = {t: tasks.get(t, cfg).outputs for t in cfg["tasks"]}
    tx = optim.build_optimizer(opt_cfg, schedule)
    if "optimizer.lr" in values:
        tx = optim.scale_lr(tx, values["optimizer.lr"] / cfg["optimizer"]["lr"])
    model = models.build_model(model_cfg, heads, **sweeps.model_options(cfg))
    return model, optim.freeze(tx, models.expand_shared(model, cfg["train"]["freeze"]))


def resolve_microbatch(cfg: Mapping[str, Any]) -> int:
    """train.microbatch, with -1 (auto) resolved: on CPU the backbone's `cpu_microbatch` (32 for the
    conv backbones: their im2col patches then stay in cache; 0 for MLPs, which run slower
    micro-batched) when it divides the batch and the model keeps no BatchNorm statistics; else 0
    (on a GPU, micro-batches only cost speed; with `mtl.engine: gramian`, which needs whole batches). The figures: docs/performance.md, docs/accelerators.md."""
    microbatch, batch = cfg["train"]["microbatch"], cfg["train"]["batch_size"]
    if microbatch == -1 and cfg["mtl"].get("engine") == "gramian":
        return 0  # The Gramian path works on whole batches (mtljax/mtl/gramian.py).
    if microbatch == -1:
        size = getattr(models.BACKBONES[cfg["model"]["name"]], "cpu_microbatch", 0)
        fits = jax.default_backend() == "cpu" and size and batch > size and batch % size == 0
        microbatch = size if fits and not cfg["model"].get("batchnorm", False) else 0
    return microbatch


def resolve_conv_impl(cfg: Mapping[str, Any]) -> str:
    """model.conv_impl, with 'auto' resolved for the configured backbone (`ops.resolve_conv_impl`
    with its `gpu_conv_impl`). Backbones without a `conv_impl` option count as matmul ones."""
    backbone = models.BACKBONES[cfg["model"]["name"]]
    return ops.resolve_conv_impl(cfg["model"].get("conv_impl", "auto"), getattr(backbone, "gpu_conv_impl", "matmul"))


def resolve_steps_per_call(cfg: Mapping[str, Any]) -> int:
    """train.steps_per_call, with -1 (auto) resolved: 10, except 1 for XLA convs on CPU (whose
    speed collapses inside a loop). Several steps per call save dispatches on every backend
    (docs/performance.md, docs/accelerators.md)."""
    k = cfg["train"]["steps_per_call"]
    if k > 0:
        return k
    xla_on_cpu = jax.default_backend() == "cpu" and resolve_conv_impl(cfg) == "xla"
    return 1 if xla_on_cpu else 10


def resolve_replicas(cfg: Mapping[str, Any]) -> str:
    """train.replicas, with 'auto' resolved: 'loop' on CPU, else 'vmap'. A CPU's cores are already
    busy with one replica, so vmapped replicas run slower per replica there, while looped ones each
    run at a plain run's speed and equal it bit for bit; an accelerator has room for many replicas
    at once (benchmarks/scaling.py; the figures: docs/performance.md, docs/accelerators.md)."""
    mode = cfg["train"]["replicas"]
    return mode if mode != "auto" else ("loop" if jax.default_backend() == "cpu" else "vmap")


def resolve_eval_batch(cfg: Mapping[str, Any]) -> int:
    """train.eval_batch_size, with -1 (auto) resolved: 32 on CPU (cache-sized), 1000 elsewhere."""
    size = cfg["train"]["eval_batch_size"]
    return size if size > 0 else (32 if jax.default_backend() == "cpu" else 1000)
