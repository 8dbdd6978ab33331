"""The training loop: epochs of jitted steps over device-resident data, evaluation, checkpoints.

The loop itself is Python: on XLA:CPU a Python loop of jitted steps measured ~8× faster than a
`lax.scan` over steps (shared/perf-notes.md). Data stay on device as uint8; each step receives only
the batch's indices, and gathers and converts its batch on device.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from mtljax import (checkpoint, data, metrics, models, ops, optim, parallel, schedules, seedstats, steps,
                    strategies, sweeps, tasks)


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
        image_shape = self.splits["train"].images.shape[1:]
        strategy = self.cfg["mtl"]["strategy"]
        state = jax.vmap(lambda key: steps.create_state(self.model, self.tx, self.plateau, key, image_shape,
                                                        strategy))(keys)
        hyper = {key: jnp.asarray(v) for key, v in sweeps.replica_values(self.points, self.cfg["seeds"]).items()}
        state = state.replace(hyper=hyper)
        return graft_params(state, self.cfg["init"]) if self.cfg["init"]["run"] else state

    def dropout_rng(self) -> jax.Array:
        """Each seed's base key of the train steps (each step folds in its step number)."""
        return jnp.stack([jax.random.fold_in(jax.random.key(seed), 1) for seed in self.seeds])


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
    """train.microbatch, with -1 (auto) resolved: 32 on CPU for models without BatchNorm, else 0."""
    microbatch, batch = cfg["train"]["microbatch"], cfg["train"]["batch_size"]
    if microbatch == -1:
        cpu = jax.default_backend() == "cpu"
        microbatch = 32 if cpu and not cfg["model"]["batchnorm"] and batch > 32 and batch % 32 == 0 else 0
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

    `evaluate` runs a whole split in one call (a `lax.map` over chunks); on this CPU chunks of 32
    ran ~3x faster than batches of 1000.

    `train` takes one step per row of `idx` (a K×batch index matrix) inside a `lax.scan`, each
    gathering its batch from the device-resident `data` and adding its metrics into `sums`, so
    metrics leave the device once per epoch. On this CPU chunks of 10+ steps ran ~14 % faster than
    a Python loop of single steps (benchmarks/). State and sums are donated.
    """
    train_step = steps.make_train_step(exp.model, exp.tx, exp.loss_weights, resolve_microbatch(exp.cfg),
                                       exp.cfg["augment"], exp.configure, exp.cfg["mtl"], exp.steps_per_epoch)
    eval_step = steps.make_eval_step(exp.model)

    def train(state, sums, dataset, idx, rng):
        def one_step(carry, batch_idx):
            state, sums = carry
            batch = jax.tree.map(lambda a: a[batch_idx], dataset)
            state, step_metrics = train_step(state, batch, rng)
            return (state, jax.tree.map(jnp.add, sums, step_metrics)), None

        if idx.shape[0] == 1:  # No loop at all: XLA's own conv runs ~30x slower inside one on CPU.
            return one_step((state, sums), idx[0])[0]
        (state, sums), _ = jax.lax.scan(one_step, (state, sums), idx)
        return state, sums

    eval_chunk = resolve_eval_batch(exp.cfg)

    def evaluate(params, batch_stats, images, labels):
        """Per-example losses and predictions of a whole split, in chunks of `eval_chunk`."""

        def one(example):
            image, label = example
            logits = eval_step(params, batch_stats, image[None])
            return {t: (steps.cross_entropy(logits[t], label[t][None])[0], jnp.argmax(logits[t], -1)[0])
                    for t in label}

        return jax.lax.map(one, (images, labels), batch_size=eval_chunk)

    # Every seed at once: state, sums, indices and keys carry a leading seed axis; data are shared.
    return (jax.jit(jax.vmap(train, in_axes=(0, 0, None, 0, 0)), donate_argnums=(0, 1)),
            jax.jit(jax.vmap(evaluate, in_axes=(0, 0, None, None))))


def zero_sums(task_names, n_seeds: int) -> dict[str, jax.Array]:
    """Zeroed per-seed accumulators of the train step's metrics (`loss`, `<task>/loss|accuracy`)."""
    keys = ["loss", *[f"{t}/{m}" for t in task_names for m in ("loss", "accuracy")]]
    return {key: jnp.zeros((n_seeds,)) for key in keys}


def epoch_chunks(steps_per_epoch: int, chunk: int) -> list[tuple[int, int]]:
    """(first step, number of steps) of each train call in an epoch: full chunks, then the rest."""
    return [(start, min(chunk, steps_per_epoch - start)) for start in range(0, steps_per_epoch, chunk)]


def evaluate_split(evaluate: Callable, state: steps.TrainState, dataset: Mapping[str, jax.Array], exp: Experiment
                   ) -> tuple[list[dict[str, float]], list[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """Per seed: metrics (`task/metric` and `loss`) and confusion matrices; and predictions (S×N)."""
    labels = {t: dataset[t] for t in exp.loss_weights}
    out = parallel.host_value(evaluate(state.params, state.batch_stats, dataset["image"], labels))
    hyper = parallel.host_value(state.hyper)
    n, truth = len(dataset["image"]), {t: parallel.host_value(dataset[t]) for t in exp.loss_weights}
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


def seed_mean(per_seed: list[Mapping[str, float]]) -> dict[str, float]:
    """The mean over seeds of every metric (for one seed: its own values, exactly)."""
    return {key: float(np.mean([m[key] for m in per_seed])) if len(per_seed) > 1 else per_seed[0][key]
            for key in per_seed[0]}


@jax.jit
def select_seeds(mask: np.ndarray, new: Any, old: Any) -> Any:
    """Per seed (leading axis), `new` where `mask` else `old` (jitted: on many processes a host
    mask cannot meet global arrays outside a jit)."""
    return jax.tree.map(lambda a, b: jnp.where(mask.reshape(-1, *[1] * (a.ndim - 1)), a, b), new, old)


class EarlyStopping:
    """Tracks the monitored metric: best value, best epoch and epochs without improvement."""

    def __init__(self, mode: str, patience: int, best: float | None = None, best_epoch: int = 0,
                 bad_epochs: int = 0):
        self.mode, self.patience = mode, patience
        self.best = best if best is not None else (math.inf if mode == "min" else -math.inf)
        self.best_epoch, self.bad_epochs = best_epoch, bad_epochs

    def update(self, value: float, epoch: int) -> bool:
        """Records `value` for `epoch`; returns True when it is the best so far."""
        improved = value < self.best if self.mode == "min" else value > self.best
        if improved:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience

    def state(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}


def make_diagnostics(exp: Experiment, train_data: Mapping[str, jax.Array]) -> Callable[[steps.TrainState], dict]:
    """`diagnose(state) -> {key: value}`: task-gradient conflict on the first `mtl.diagnose_batch`
    training images (the same ones every time), per seed: `conflict/cos/<a>|<b>` for each pair of
    tasks and `conflict/norm_ratio/<t>` (‖g_t‖ over the mean norm), as lists over seeds."""
    names = list(exp.loss_weights)
    n = min(exp.cfg["mtl"]["diagnose_batch"], len(exp.splits["train"]))
    batch = {key: value[:n] for key, value in train_data.items()}
    grads_fn = steps.make_task_gradients(exp.model, names)
    fn = jax.jit(jax.vmap(lambda p, s, b: strategies.conflict_stats(grads_fn(p, s, b)), in_axes=(0, 0, None)))

    def diagnose(state):
        stats = parallel.host_value(fn(state.params, state.batch_stats, batch))
        out = {f"conflict/norm_ratio/{t}": stats["norm_ratio"][:, i].tolist() for i, t in enumerate(names)}
        for i, j in itertools.combinations(range(len(names)), 2):
            out[f"conflict/cos/{names[i]}|{names[j]}"] = stats["cos"][:, i, j].tolist()
        return out

    return diagnose


def _log_line(record: Mapping[str, Any], task_names) -> str:
    parts = [f"epoch {record['epoch']:3d}", f"loss {record['train/loss']:.4f}/{record['val/loss']:.4f}"]
    parts += [f"{t} {100 * record[f'val/{t}/accuracy']:.2f}%" for t in task_names]
    parts += [f"lr {record['lr']:.2e}", f"{record['epoch_time_s']:.1f}s"]
    return " | ".join(parts)


def write_history(path: Path, history: list[dict]) -> None:
    """Rewrites metrics.jsonl from the history (atomically), one line per epoch (process 0 only)."""
    if not parallel.is_primary():
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in history))
    tmp.replace(path)


def train_and_evaluate(exp: Experiment, run_dir: Path, resume: bool = False
                       ) -> tuple[dict, dict[str, np.ndarray]]:
    """Trains `exp`, checkpointing every epoch into `run_dir`.

    Returns:
      The run summary (JSON-ready) and the test predictions per task (of the first seed).

    All `seeds` replicas train as one vmapped program; each has its own initialisation, dropout
    keys, data order, plateau and early-stopping state, and its own best epoch (the best state is
    selected per seed on device). Metrics logged are seed means, with per-seed values under "seeds".

    With `resume`, continues from the latest checkpoint in `run_dir`: state, epoch, history and
    early-stopping state are restored, and the data order of each epoch is a function of the seed
    and epoch only, so the remaining epochs replay as they would have.
    """
    cfg, train_cfg = exp.cfg, exp.cfg["train"]
    t_start = time.perf_counter()
    ckpts = checkpoint.RunCheckpoints(run_dir, keep=train_cfg["keep_checkpoints"])
    state, history = exp.init_state(), []
    new_stopper = lambda **kw: EarlyStopping(train_cfg["monitor_mode"], train_cfg["early_stopping_patience"], **kw)
    stoppers = [new_stopper() for _ in exp.seeds]
    if resume:
        state, meta = ckpts.restore(state, "latest")
        history = meta["history"]
        stoppers = [new_stopper(**kw) for kw in meta["early_stopping"]]
    has_best = resume and ckpts.best.latest_step() is not None
    # Its own buffers: `state`'s are donated to every train call.
    best_state = ckpts.restore(state, "best")[0] if has_best else jax.tree.map(jnp.copy, state)
    write_history(run_dir / "metrics.jsonl", history)

    train_fn, eval_jit = make_epoch_fns(exp)
    mesh = parallel.data_mesh()  # None on one device; else batches are split over all of them.
    if mesh is not None and train_cfg["batch_size"] % mesh.size:
        raise ValueError(f"train.batch_size {train_cfg['batch_size']} is not a multiple of the {mesh.size} devices")
    train_data, val_data = device_split(exp.splits["train"]), device_split(exp.splits["val"])
    rng, batch_size, n_seeds = exp.dropout_rng(), train_cfg["batch_size"], len(exp.seeds)
    sums = zero_sums(exp.loss_weights, n_seeds)
    state, best_state, sums, train_data, val_data, rng = parallel.replicate(
        (state, best_state, sums, train_data, val_data, rng), mesh)
    chunks = epoch_chunks(exp.steps_per_epoch, resolve_steps_per_call(cfg))
    t_compile = time.perf_counter()
    compiled = {n: train_fn.lower(state, sums, train_data,
                                  parallel.shard_batch(np.zeros((n_seeds, n, batch_size), np.int32), mesh), rng).compile()
                for n in sorted({n for _, n in chunks})}
    val_labels = {t: val_data[t] for t in exp.loss_weights}
    eval_val = eval_jit.lower(state.params, state.batch_stats, val_data["image"], val_labels).compile()
    plateau_update = jax.jit(jax.vmap(lambda st, v: exp.plateau.update(jnp.zeros(()), st, value=v)[1]))
    every = cfg["mtl"]["diagnose_every"]
    diagnose = make_diagnostics(exp, train_data) if every and len(exp.loss_weights) > 1 else None
    compile_time = time.perf_counter() - t_compile

    for epoch in range(len(history) + 1, train_cfg["epochs"] + 1):
        if all(stopper.should_stop for stopper in stoppers):
            break
        t_epoch = time.perf_counter()
        perms = [epoch_permutation(seed, epoch, len(exp.splits["train"])) for seed in exp.seeds]
        lr_factor = parallel.host_value(state.hyper["optimizer.lr"]) / cfg["optimizer"]["lr"] if "optimizer.lr" in state.hyper \
            else np.ones(n_seeds)
        step, scale = parallel.host_value((state.step, state.plateau.scale))
        lrs = [float(exp.schedule(step[k])) * float(scale[k]) * float(lr_factor[k]) for k in range(n_seeds)]
        sums = jax.tree.map(jnp.zeros_like, sums)
        with tqdm(total=exp.steps_per_epoch, desc=f"epoch {epoch}", leave=False, mininterval=1.0,
                  disable=not parallel.is_primary()) as bar:
            for k, (start, n) in enumerate(chunks):
                idx = np.stack([p[start * batch_size:(start + n) * batch_size].reshape(n, batch_size) for p in perms])
                state, sums = compiled[n](state, sums, train_data, parallel.shard_batch(idx, mesh), rng)
                bar.update(n)
                if k % 10 == 9:  # Syncs with the device, so only now and then.
                    bar.set_postfix(loss=f"{parallel.host_value(sums['loss']).mean() / (start + n):.4f}")
        sums_host = parallel.host_value(sums)
        train_seeds = [{key: float(v[k]) / exp.steps_per_epoch for key, v in sums_host.items()} for k in range(n_seeds)]
        val_seeds, _, _ = evaluate_split(eval_val, state, val_data, exp)
        state = state.replace(plateau=plateau_update(state.plateau, np.asarray([m["loss"] for m in val_seeds], np.float32)))
        per_seed = [{"lr": lr, **{f"train/{key}": v for key, v in tr.items()}, **{f"val/{key}": v for key, v in va.items()}}
                    for lr, tr, va in zip(lrs, train_seeds, val_seeds)]
        if diagnose is not None and epoch % every == 0:
            for key, values in diagnose(state).items():
                for m, v in zip(per_seed, values):
                    m[key] = v
        record = {"epoch": epoch, "epoch_time_s": time.perf_counter() - t_epoch, **seed_mean(per_seed)}
        if n_seeds > 1:
            record["seeds"] = {key: [m[key] for m in per_seed] for key in per_seed[0]}
        history.append(record)
        improved = np.array([stopper.update(m[train_cfg["monitor"]], epoch) for stopper, m in zip(stoppers, per_seed)])
        best_state = select_seeds(improved, state, best_state)
        meta = {"epoch": epoch, "name": cfg["name"], "history": history,
                "early_stopping": [stopper.state() for stopper in stoppers]}
        ckpts.save(epoch, state, meta, best_state if improved.any() else None)
        write_history(run_dir / "metrics.jsonl", history)
        if parallel.is_primary():
            tqdm.write(_log_line(record, exp.loss_weights))

    if train_cfg["restore_best"] and ckpts.best.latest_step() is not None:
        state, _ = ckpts.restore(state, "best")
    # The test split has its own shape, so `eval_jit` compiles once more here.
    test_data = parallel.replicate(device_split(exp.splits["test"]), mesh)
    test_seeds, confusions, preds = evaluate_split(eval_jit, state, test_data, exp)
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
    }
    if n_seeds > 1:
        summary["test_seeds"] = test_seeds
        summary["test_stats"] = seedstats.summarize_runs(test_seeds)
    if cfg["sweep"]:  # One row per point; "test" above is then the mean over all replicas.
        summary["sweep"] = {"keys": list(cfg["sweep"]), "seeds_per_point": cfg["seeds"],
                            "rows": sweeps.point_rows(exp.points, test_seeds, cfg["seeds"])}
    return summary, {t: p[0] for t, p in preds.items()}
