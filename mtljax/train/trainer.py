"""The training loop: epochs of jitted steps over device-resident data, evaluation, checkpoints.

The loop itself is Python: on XLA:CPU a Python loop of jitted steps measured ~8× faster than a
`lax.scan` over steps (shared/perf-notes.md). Data stay on device as uint8; each step receives only
the batch's indices, and gathers and converts its batch on device.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from mtljax import data, metrics, models, tasks

from mtljax.data import compose

from mtljax.models import ops

from mtljax.outputs import seedstats, tblog

from mtljax.train import checkpoint, guard, optim, parallel, schedules, steps, sweeps
from mtljax.train.monitor import EarlyStopping, log_line, make_diagnostics, seed_mean, select_seeds, write_history  # noqa: F401


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

    @property
    def points(self) -> list[dict[str, float]]:
        """The sweep's points (sweeps.grid); [{}] without a sweep."""
        return sweeps.grid(self.cfg["sweep"])

    @property
    def seeds(self) -> list[int]:
        """The seed of each replica: `seed`, `seed + 1`, ... (`seeds` of them), for every point."""
        return [self.cfg["seed"] + k for _ in self.points for k in range(self.cfg["seeds"])]

    def init_state(self) -> steps.TrainState:
        """The initial TrainState of every replica, stacked on a leading replica axis."""
        keys = jnp.stack([jax.random.fold_in(jax.random.key(seed), 0) for seed in self.seeds])
        image_shape = data.image_shape(self.cfg["data"])
        strategy = self.cfg["mtl"]["strategy"]
        # One compiled program: run eagerly, flax's initialisers compiled ~100 small ops one by one (~3 s).
        ema = self.cfg["train"]["ema_decay"] > 0
        create = jax.vmap(lambda key: steps.create_state(self.model, self.tx, self.plateau, key, image_shape, strategy,
                                                         ema))
        state = jax.jit(create, compiler_options=compiler_options())(keys)
        hyper = {key: jnp.asarray(v) for key, v in sweeps.replica_values(self.points, self.cfg["seeds"]).items()}
        state = state.replace(hyper=hyper)
        return graft_params(state, self.cfg["init"]) if self.cfg["init"]["run"] else state

    def dropout_rng(self) -> jax.Array:
        """Each seed's base key of the train steps (each step folds in its step number)."""
        return jnp.stack([jax.random.fold_in(jax.random.key(seed), 1) for seed in self.seeds])


def compiler_options() -> dict[str, int] | None:
    """XLA options of mtljax's programs (initial state, train call, evaluation): on CPU, LLVM at
    -O1 (else None, the backend's defaults). Measured on the 2-core CPU against XLA's default
    (-O2), in alternating windows of one process: threshold.py's train call compiled in 1.6 s
    instead of 1.8 s and ran ~5 % faster (batch 64, median of 24 windows 17,016 vs 16,140 img/s),
    to bit-identical parameters after 365 calls; the init of threshold.py and vgg_parity.py
    compiled in ~0.8 s instead of ~1.6 s. The BatchNorm models (vgg, skipcnn) ran as fast or
    faster and compiled 0.5-0.75 s sooner; their float results differ from -O2's in the last bit
    from the first step on (the order of a few float operations), so their trajectories differ
    as with any such change. -O0 compiled sooner still but ran 5x slower."""
    return {"xla_backend_optimization_level": 1} if jax.default_backend() == "cpu" else None


def graft_params(state: steps.TrainState, init: Mapping[str, Any]) -> steps.TrainState:
    """Replaces the subtrees `init.params` of the state's params by those of run `init.run`'s best
    checkpoint (transfer learning). The optimizer state is unchanged: it does not depend on values.

    Raises:
      checkpoint.CheckpointError: no such checkpoint, or a subtree of another shape.
    """
    source = checkpoint.RunCheckpoints(Path(init["run"]))
    try:
        loaded = source.load_params("best")
    finally:
        source.close()
    params = dict(state.params)
    n_seeds = jax.tree.leaves(state.params)[0].shape[0]
    for name in init["params"]:
        # Both sides carry a leading seed axis; one source seed is shared by every seed here.
        ours = jax.tree.map(lambda a: a.shape[1:], params.get(name))
        theirs = jax.tree.map(lambda a: a.shape[1:], loaded.get(name))
        source_seeds = {a.shape[0] for a in jax.tree.leaves(loaded.get(name))}
        if ours != theirs or not source_seeds <= {1, n_seeds}:
            raise checkpoint.CheckpointError(f"init.params {name!r}: {init['run']} has shapes {theirs} "
                                             f"({source_seeds} seeds), this model {ours} ({n_seeds} seeds)")
        params[name] = jax.tree.map(lambda a: jnp.broadcast_to(jnp.asarray(a), (n_seeds, *a.shape[1:])), loaded[name])
    if state.ema:  # The average starts from the grafted parameters too (own buffers: both are donated).
        state = state.replace(ema={**state.ema, "params": jax.tree.map(jnp.copy, params)})
    return state.replace(params=params)


def build_experiment(cfg: Mapping[str, Any]) -> Experiment:
    """Loads the data and builds model and optimizer for a validated config."""
    # On device once (as uint8): the host copies are dropped here (jnp.asarray copies on CPU).
    splits = {name: data.Split(jnp.asarray(split.images), {t: jnp.asarray(y) for t, y in split.labels.items()})
              for name, split in data.build_splits(cfg).items()}
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
    return Experiment(
        cfg=cfg,
        splits=splits,
        model=model,
        tx=tx,
        plateau=schedules.plateau_controller(lr, cfg["schedule"]),
        schedule=schedule,
        steps_per_epoch=steps_per_epoch,
        loss_weights={t: float(cfg["loss_weights"].get(t, 1.0)) for t in cfg["tasks"]},
        configure=functools.partial(configure, cfg, schedule) if swept else None,
    )


def configure(cfg: Mapping[str, Any], schedule: Callable, values: Mapping[str, Any]) -> tuple[Any, Any]:
    """The model and optax chain of `cfg` with the swept `values` ({dotted key: float or tracer})
    put in: dropout rates into the model, weight decay into the optimizer, and a learning rate as
    the factor lr / lr₀ on the updates (optim.scale_lr). Loss weights and augmentation are read by
    the train step itself."""
    model_cfg = {**cfg["model"], **{k[6:]: v for k, v in values.items() if k.startswith("model.")}}
    opt_cfg = dict(cfg["optimizer"])
    if "optimizer.weight_decay" in values:  # As an array, so the decay stays in the chain even at 0.
        opt_cfg["weight_decay"] = jnp.asarray(values["optimizer.weight_decay"], jnp.float32)
    heads = {t: tasks.TASKS[t].num_classes for t in cfg["tasks"]}
    tx = optim.build_optimizer(opt_cfg, schedule)
    if "optimizer.lr" in values:
        tx = optim.scale_lr(tx, values["optimizer.lr"] / cfg["optimizer"]["lr"])
    return models.build_model(model_cfg, heads), optim.freeze(tx, cfg["train"]["freeze"])


def resolve_microbatch(cfg: Mapping[str, Any]) -> int:
    """train.microbatch, with -1 (auto) resolved: 32 on CPU for conv models without BatchNorm (their
    im2col patches then stay in cache), else 0 (MLPs ran ~30 % slower micro-batched)."""
    microbatch, batch = cfg["train"]["microbatch"], cfg["train"]["batch_size"]
    if microbatch == -1:
        cpu, conv = jax.default_backend() == "cpu", cfg["model"]["name"] not in ("mlp", "mlp_scratch")
        microbatch = 32 if cpu and conv and not cfg["model"]["batchnorm"] and batch > 32 and batch % 32 == 0 else 0
    return microbatch


def resolve_steps_per_call(cfg: Mapping[str, Any]) -> int:
    """train.steps_per_call, with -1 (auto) resolved: 10, except 1 for XLA convs on CPU (whose
    speed collapses inside a loop: ~340 against ~4,900 img/s, benchmarks/speed.py)."""
    k = cfg["train"]["steps_per_call"]
    if k > 0:
        return k
    xla_on_cpu = jax.default_backend() == "cpu" and ops.resolve_conv_impl(cfg["model"]["conv_impl"]) == "xla"
    return 1 if xla_on_cpu else 10


def resolve_eval_batch(cfg: Mapping[str, Any]) -> int:
    """train.eval_batch_size, with -1 (auto) resolved: 32 on CPU (cache-sized), 1000 elsewhere."""
    size = cfg["train"]["eval_batch_size"]
    return size if size > 0 else (32 if jax.default_backend() == "cpu" else 1000)


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The training order of `epoch`: a function of (seed, epoch) only, so resume replays it."""
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int32)


def device_split(split: data.Split) -> dict[str, jax.Array]:
    """A split as one dict of device arrays: `image` (uint8) and one label array per task."""
    return {"image": jnp.asarray(split.images), **{t: jnp.asarray(y) for t, y in split.labels.items()}}


def make_epoch_fns(exp: Experiment):
    """Jitted `train(state, sums, data, idx, rng)` and `evaluate(params, stats, images, labels)`,
    vmapped over the leading seed axis of state, sums, idx (S×K×batch) and rng.

    `evaluate` runs a block of examples (`eval_data` cuts splits into blocks of one size) as a
    `lax.map` over chunks; on this CPU chunks of 32 ran ~3x faster than batches of 1000.

    `train` takes one step per row of `idx` (a K×batch index matrix) inside a `lax.scan`, each
    gathering its batch from the device-resident `data` and adding its metrics into `sums`, so
    metrics leave the device once per epoch. On this CPU chunks of 10+ steps ran ~14 % faster than
    a Python loop of single steps (benchmarks/). A row of -1 is no step at all (`pad_chunk`: the
    epoch's last call is padded to K rows, so one program serves every call). State and sums are
    donated.
    """
    train_step = steps.make_train_step(exp.model, exp.tx, exp.loss_weights, resolve_microbatch(exp.cfg),
                                       exp.cfg["augment"], exp.configure, exp.cfg["mtl"], exp.steps_per_epoch,
                                       compose.composer(exp.cfg["data"]), exp.cfg["train"]["ema_decay"])
    eval_step = steps.make_eval_step(exp.model)

    def train(state, sums, dataset, idx, rng):
        def step(carry, batch_idx):
            state, sums = carry
            batch = jax.tree.map(lambda a: a[batch_idx], dataset)
            state, step_metrics = train_step(state, batch, rng)
            return state, accumulate(sums, step_metrics)

        def one_step(carry, batch_idx):
            # Padding rows leave the carry as it was (under a vmap over seeds: computed, then discarded).
            return jax.lax.cond(batch_idx[0] >= 0, step, lambda carry, _: carry, carry, batch_idx), None

        if idx.shape[0] == 1:  # No loop at all: XLA's own conv runs ~30x slower inside one on CPU.
            return step((state, sums), idx[0])
        (state, sums), _ = jax.lax.scan(one_step, (state, sums), idx)
        return state, sums

    eval_chunk = resolve_eval_batch(exp.cfg)

    def evaluate(params, batch_stats, images, labels):
        """Per-example losses and predictions of a block of examples, in chunks of `eval_chunk`."""

        def one(example):
            image, label = example
            logits = eval_step(params, batch_stats, image[None])
            return {t: (steps.cross_entropy(logits[t], label[t][None])[0], jnp.argmax(logits[t], -1)[0])
                    for t in label}

        return jax.lax.map(one, (images, labels), batch_size=eval_chunk)

    # Every seed at once: state, sums, indices and keys carry a leading seed axis; data are shared.
    options = compiler_options()
    return (jax.jit(parallel.over_replicas(train, in_axes=(0, 0, None, 0, 0)), donate_argnums=(0, 1),
                    compiler_options=options),
            jax.jit(parallel.over_replicas(evaluate, in_axes=(0, 0, None, None)), compiler_options=options))


def zero_sums(task_names, n_seeds: int) -> dict[str, jax.Array]:
    """Zeroed per-seed accumulators of the train step's metrics: `loss`, `<task>/loss|accuracy`,
    and the non-finite counts `nan/steps`, `nan/grads`, `nan/<task>` and first step `nan/first`."""
    keys = ["loss", *[f"{t}/{m}" for t in task_names for m in ("loss", "accuracy")],
            "nan/steps", "nan/grads", *[f"nan/{t}" for t in task_names], "nan/first"]
    return reset_sums({key: jnp.zeros((n_seeds,)) for key in keys})


def reset_sums(sums: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """`sums` set back to their start (0; `nan/first` to NO_STEP), keeping their shapes and placement."""
    return {k: jnp.full_like(v, steps.NO_STEP if k == "nan/first" else 0.0) for k, v in sums.items()}


def accumulate(sums: Mapping[str, jax.Array], metrics: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Adds a step's metrics into the sums (`nan/first` keeps the minimum: the first bad step)."""
    return {k: jnp.minimum(v, metrics[k]) if k == "nan/first" else v + metrics[k] for k, v in sums.items()}


def epoch_lrs(exp: Experiment, state: steps.TrainState) -> list[float]:
    """Each replica's learning rate at the start of an epoch (schedule × plateau × sweep factor)."""
    n = len(exp.seeds)
    base = exp.cfg["optimizer"]["lr"]
    factor = parallel.host_value(state.hyper["optimizer.lr"]) / base if "optimizer.lr" in state.hyper else np.ones(n)
    step, scale = parallel.host_value((state.step, state.plateau.scale))
    return [float(exp.schedule(step[k])) * float(scale[k]) * float(factor[k]) for k in range(n)]


def epoch_chunks(steps_per_epoch: int, chunk: int) -> list[tuple[int, int]]:
    """(first step, number of steps) of each train call in an epoch: full chunks, then the rest."""
    return [(start, min(chunk, steps_per_epoch - start)) for start in range(0, steps_per_epoch, chunk)]


def pad_chunk(idx: np.ndarray, rows: int) -> np.ndarray:
    """A call's S×n×batch index array padded with rows of -1 (no step) to S×rows×batch: every call
    of an epoch then has one shape, so the last, shorter one compiles nothing new (~1.7 s saved on
    threshold.py's 843 = 84×10 + 3 steps)."""
    pad = np.full((idx.shape[0], rows - idx.shape[1], idx.shape[2]), -1, idx.dtype)
    return np.concatenate([idx, pad], axis=1) if rows > idx.shape[1] else idx


EVAL_BLOCK = 2048  # Examples per evaluation call (a multiple of the CPU's eval chunk of 32).


def eval_block(exp: Experiment) -> int:
    """Examples per evaluation call: EVAL_BLOCK, or fewer when no evaluated split is that large.
    Validation and test are cut into blocks of this one size, so one program evaluates both."""
    return min(EVAL_BLOCK, max(len(exp.splits[name]) for name in ("val", "test")))


@dataclasses.dataclass(frozen=True)
class EvalData:
    """A split as `evaluate_split` takes it, prepared once: device blocks of `eval_block` examples
    (images and labels, the last block padded with zeros), the labels on the host, the true size."""

    blocks: list[dict[str, jax.Array]]
    truth: dict[str, np.ndarray]
    size: int


def eval_data(split: data.Split, exp: Experiment, mesh=None) -> EvalData:
    """`split` cut into `eval_block(exp)`-sized device blocks (replicated over `mesh`, if any)."""
    block = eval_block(exp)
    host = {"image": np.asarray(split.images), **{t: np.asarray(split.labels[t]) for t in exp.loss_weights}}
    size = len(host["image"])
    pad = -size % block
    padded = {k: np.concatenate([v, np.zeros((pad, *v.shape[1:]), v.dtype)]) if pad else v for k, v in host.items()}
    blocks = [parallel.replicate(jax.tree.map(jnp.asarray, {k: v[start:start + block] for k, v in padded.items()}), mesh)
              for start in range(0, size + pad, block)]
    return EvalData(blocks, {t: host[t] for t in exp.loss_weights}, size)


def evaluate_split(evaluate: Callable, state: steps.TrainState, split: EvalData, exp: Experiment
                   ) -> tuple[list[dict[str, float]], list[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """Per seed: metrics (`task/metric` and `loss`) and confusion matrices; and predictions (S×N).

    `evaluate` runs one block per call; the padding is cut off here."""
    params, batch_stats = steps.eval_variables(state)
    outs = [evaluate(params, batch_stats, part["image"], {t: part[t] for t in exp.loss_weights})
            for part in split.blocks]
    n, truth = split.size, split.truth
    out = {t: [np.concatenate([parallel.host_value(o[t][i]) for o in outs], axis=1)[:, :n] for i in (0, 1)]
           for t in exp.loss_weights}
    hyper = parallel.host_value(state.hyper)
    preds = {t: out[t][1] for t in exp.loss_weights}
    per_seed, confusions = [], []
    for k in range(len(out[next(iter(out))][0])):
        results, conf = {}, {}
        for t in exp.loss_weights:
            conf[t] = metrics.confusion_matrix(truth[t], preds[t][k], tasks.TASKS[t].num_classes)
            results[f"{t}/loss"] = float(np.sum(out[t][0][k], dtype=np.float64)) / n
            results.update({f"{t}/{m}": v for m, v in metrics.classification_metrics(conf[t]).items()})
        weights = {t: float(hyper[f"loss_weights.{t}"][k]) if f"loss_weights.{t}" in hyper else w
                   for t, w in exp.loss_weights.items()}  # A loss-weight sweep: this replica's own.
        results["loss"] = sum(w * results[f"{t}/loss"] for t, w in weights.items())
        per_seed.append(results)
        confusions.append(conf)
    return per_seed, confusions, preds


def train_and_evaluate(exp: Experiment, run_dir: Path, resume: bool = False
                       ) -> tuple[dict, dict[str, np.ndarray]]:
    """Trains `exp`, checkpointing every epoch into `run_dir`.

    Returns:
      The run summary (JSON-ready) and the test predictions per task (of the first seed).

    Raises:
      guard.StopRequested: SIGINT/SIGTERM; the current jitted call finished and was checkpointed.
      guard.NonFiniteError: a NaN/Inf step with train.nonfinite "stop"; this epoch is not saved.
      checkpoint.CheckpointWriteError, OSError: a checkpoint or log could not be written.

    All replicas (seeds, sweep points) train as one vmapped program; each has its own
    initialisation, dropout keys, data order, plateau and early-stopping state, and its own best
    epoch (the best state is selected per seed on device). Metrics logged are seed means, with
    per-seed values under "seeds".

    With `resume`, continues from the latest checkpoint in `run_dir`: state, best state, epoch,
    position inside a stopped epoch (with its partial sums), history and early-stopping state are
    restored, and the data order of each epoch is a function of the seed and epoch only, so the
    run continues bit for bit as it would have.
    """
    cfg, train_cfg = exp.cfg, exp.cfg["train"]
    t_start = time.perf_counter()
    ckpts = checkpoint.RunCheckpoints(run_dir, keep=train_cfg["keep_checkpoints"])
    state, history, position, best_saved, skipped = exp.init_state(), [], None, 0, 0
    new_stopper = lambda **kw: EarlyStopping(train_cfg["monitor_mode"], train_cfg["early_stopping_patience"], **kw)
    stoppers = [new_stopper() for _ in exp.seeds]
    best_state = jax.tree.map(jnp.copy, state)  # Its own buffers: `state`'s are donated to every call.
    if resume and ckpts.latest.latest_step() is None:  # Died before its first checkpoint.
        print(f"resume: no checkpoint in {run_dir} yet; starting it from the beginning")
    elif resume:
        tree, meta = ckpts.restore({"train": state, "best": best_state}, "latest")
        state, best_state = tree["train"], tree["best"]
        history, position, best_saved = meta["history"], meta["position"], meta["best_saved"]
        stoppers = [new_stopper(**kw) for kw in meta["early_stopping"]]
        skipped = meta["nonfinite_steps"]
        if best_saved and ckpts.best.latest_step() != best_saved:  # Died between the two writes.
            ckpts.save_best(best_saved, best_state, meta)
    write_history(run_dir / "metrics.jsonl", history)

    train_fn, eval_jit = make_epoch_fns(exp)
    mesh = parallel.data_mesh()  # None on one device; else batches are split over all of them.
    if mesh is not None and train_cfg["batch_size"] % mesh.size:
        raise ValueError(f"train.batch_size {train_cfg['batch_size']} is not a multiple of the {mesh.size} devices")
    train_data, val_data = device_split(exp.splits["train"]), eval_data(exp.splits["val"], exp, mesh)
    rng, batch_size, n_seeds = exp.dropout_rng(), train_cfg["batch_size"], len(exp.seeds)
    sums = zero_sums(exp.loss_weights, n_seeds)
    state, best_state, sums, train_data, rng = parallel.replicate((state, best_state, sums, train_data, rng), mesh)
    call_steps = min(resolve_steps_per_call(cfg), exp.steps_per_epoch)
    chunks = epoch_chunks(exp.steps_per_epoch, call_steps)
    t_compile = time.perf_counter()
    block = val_data.blocks[0]
    lowered = [train_fn.lower(state, sums, train_data,
                              parallel.shard_batch(np.zeros((n_seeds, call_steps, batch_size), np.int32), mesh), rng),
               eval_jit.lower(state.params, state.batch_stats, block["image"], {t: block[t] for t in exp.loss_weights})]
    train_call, eval_call = [low.compile() for low in lowered]  # In threads: no faster (measured).
    plateau_update = jax.jit(jax.vmap(lambda st, v: exp.plateau.update(jnp.zeros(()), st, value=v)[1]))
    every = cfg["mtl"]["diagnose_every"]
    diagnose = make_diagnostics(exp, train_data) if every and len(exp.loss_weights) > 1 else None
    compile_time = time.perf_counter() - t_compile

    def meta_now(epoch_done: int, at: dict | None) -> dict:
        return {"epoch": epoch_done, "name": cfg["name"], "history": history, "position": at,
                "early_stopping": [stopper.state() for stopper in stoppers], "best_saved": best_saved,
                "nonfinite_steps": skipped}

    def global_step() -> int:
        return int(parallel.host_value(state.step)[0])

    first_epoch = position["epoch"] if position else len(history) + 1
    with guard.stop_signals() as received, ckpts.finishing_writes():
        for epoch in range(first_epoch, train_cfg["epochs"] + 1):
            if all(stopper.should_stop for stopper in stoppers):
                break
            t_epoch = time.perf_counter()
            perms = [epoch_permutation(seed, epoch, len(exp.splits["train"])) for seed in exp.seeds]
            if position:  # Resuming inside this epoch: its learning rates and partial sums.
                start, lrs = position["chunk"], position["lrs"]
                sums = parallel.replicate({k: np.asarray(v, np.float32) for k, v in position["sums"].items()}, mesh)
                position = None
            else:
                start, lrs, sums = 0, epoch_lrs(exp, state), reset_sums(sums)
            with tqdm(total=exp.steps_per_epoch, initial=sum(n for _, n in chunks[:start]), desc=f"epoch {epoch}",
                      leave=False, mininterval=1.0, disable=not parallel.is_primary()) as bar:
                for k in range(start, len(chunks)):
                    first, n = chunks[k]
                    idx = np.stack([p[first * batch_size:(first + n) * batch_size].reshape(n, batch_size) for p in perms])
                    state, sums = train_call(state, sums, train_data, parallel.shard_batch(pad_chunk(idx, call_steps),
                                                                                          mesh), rng)
                    bar.update(n)
                    if k % 10 == 9:  # Syncs with the device, so only now and then.
                        sums_host = parallel.host_value(sums)
                        guard.check_finite(sums_host, exp.loss_weights, epoch, train_cfg["nonfinite"])
                        bar.set_postfix(loss=f"{sums_host['loss'].mean() / (first + n):.4f}")
                    if received:
                        sums_host = parallel.host_value(sums)
                        guard.check_finite(sums_host, exp.loss_weights, epoch, train_cfg["nonfinite"])
                        at = {"epoch": epoch, "chunk": k + 1, "lrs": lrs,
                              "sums": {key: v.tolist() for key, v in sums_host.items()}}
                        ckpts.save(global_step(), {"train": state, "best": best_state}, meta_now(epoch - 1, at))
                        raise guard.StopRequested(received[0], epoch, global_step())
            sums_host = parallel.host_value(sums)
            skipped += guard.check_finite(sums_host, exp.loss_weights, epoch, train_cfg["nonfinite"])
            counted = np.maximum(exp.steps_per_epoch - sums_host["nan/steps"], 1)  # Skipped steps add zeros.
            train_seeds = [{key: float(v[k]) / float(counted[k]) for key, v in sums_host.items() if not key.startswith("nan/")}
                           | {"nonfinite_steps": float(sums_host["nan/steps"][k])} for k in range(n_seeds)]
            val_seeds, _, _ = evaluate_split(eval_call, state, val_data, exp)
            state = state.replace(plateau=plateau_update(state.plateau, np.asarray([m["loss"] for m in val_seeds],
                                                                                   np.float32)))
            per_seed = [{"lr": lr, **{f"train/{key}": v for key, v in tr.items()},
                         **{f"val/{key}": v for key, v in va.items()}} for lr, tr, va in zip(lrs, train_seeds, val_seeds)]
            if diagnose is not None and epoch % every == 0:
                for key, values in diagnose(state).items():
                    for m, v in zip(per_seed, values):
                        m[key] = v
            record = {"epoch": epoch, "epoch_time_s": time.perf_counter() - t_epoch, **seed_mean(per_seed)}
            if n_seeds > 1:
                record["seeds"] = {key: [m[key] for m in per_seed] for key in per_seed[0]}
            history.append(record)
            improved = np.array([stopper.update(m[train_cfg["monitor"]], epoch) for stopper, m in zip(stoppers, per_seed)])
            if improved.any():
                best_state, best_saved = select_seeds(improved, state, best_state), epoch
            # Written while the next epoch trains. Latest first: it holds the best state too, so a
            # death between the writes loses nothing.
            ckpts.save_epoch(global_step(), {"train": state, "best": best_state}, meta_now(epoch, None),
                             best_epoch=epoch if improved.any() else None)
            write_history(run_dir / "metrics.jsonl", history)
            if parallel.is_primary():
                tblog.write_events(run_dir, history)
                tqdm.write(log_line(record, exp.loss_weights))

    if train_cfg["restore_best"] and best_saved:
        state = best_state
    test_data = eval_data(exp.splits["test"], exp, mesh)
    test_seeds, confusions, preds = evaluate_split(eval_call, state, test_data, exp)
    ckpts.close()
    epoch_times = [r["epoch_time_s"] for r in history]
    summary = {
        "name": cfg["name"],
        "seeds": exp.seeds,
        "epochs_run": len(history),
        "best_epoch": [stopper.best_epoch for stopper in stoppers] if n_seeds > 1 else stoppers[0].best_epoch,
        "test": seed_mean(test_seeds),
        # Confusion counts summed over seeds (one seed: its own).
        "confusion": {t: sum(c[t] for c in confusions).tolist() for t in exp.loss_weights},
        "wall_time_s": time.perf_counter() - t_start,
        "mean_epoch_time_s": float(np.mean(epoch_times)) if epoch_times else 0.0,
        "compile_time_s": compile_time,
        "nonfinite_steps_skipped": skipped,
    }
    if n_seeds > 1:
        summary["test_seeds"] = test_seeds
        summary["test_stats"] = seedstats.summarize_runs(test_seeds)
    if n_seeds > 1 and not cfg["sweep"]:  # Seeds of one configuration: also their ensemble.
        summary["test_vote"] = seedstats.vote_accuracy(preds, test_data.truth)
    if cfg["sweep"]:  # One row per point; "test" above is then the mean over all replicas.
        summary["sweep"] = {"keys": list(cfg["sweep"]), "seeds_per_point": cfg["seeds"],
                            "rows": sweeps.point_rows(exp.points, test_seeds, cfg["seeds"])}
    return summary, {t: p[0] for t, p in preds.items()}
