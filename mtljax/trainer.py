"""The training loop: epochs of jitted steps over device-resident data, evaluation, checkpoints.

The loop itself is Python: on XLA:CPU a Python loop of jitted steps measured ~8× faster than a
`lax.scan` over steps (shared/perf-notes.md). Data stay on device as uint8; each step receives only
the batch's indices, and gathers and converts its batch on device.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from mtljax import checkpoint, data, metrics, models, ops, optim, schedules, steps, tasks


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

    def init_state(self) -> steps.TrainState:
        """The initial TrainState, from the config's seed."""
        init_rng = jax.random.fold_in(jax.random.key(self.cfg["seed"]), 0)
        image_shape = self.splits["train"].images.shape[1:]
        state = steps.create_state(self.model, self.tx, self.plateau, init_rng, image_shape)
        return graft_params(state, self.cfg["init"]) if self.cfg["init"]["run"] else state

    def dropout_rng(self) -> jax.Array:
        """The base key of the train steps (each step folds in its step number)."""
        return jax.random.fold_in(jax.random.key(self.cfg["seed"]), 1)


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
    for name in init["params"]:
        ours = jax.tree.map(jnp.shape, params.get(name))
        theirs = jax.tree.map(jnp.shape, loaded.get(name))
        if ours != theirs:
            raise checkpoint.CheckpointError(f"init.params {name!r}: {init['run']} has shapes {theirs}, "
                                             f"this model {ours}")
        params[name] = jax.tree.map(jnp.asarray, loaded[name])
    return state.replace(params=params)


def build_experiment(cfg: Mapping[str, Any]) -> Experiment:
    """Loads the data and builds model and optimizer for a validated config."""
    splits = data.build_splits(cfg)
    train_cfg = cfg["train"]
    steps_per_epoch = len(splits["train"]) // train_cfg["batch_size"]
    if steps_per_epoch == 0:
        raise ValueError(f"train.batch_size {train_cfg['batch_size']} exceeds the "
                         f"{len(splits['train'])} training examples")
    lr = cfg["optimizer"]["lr"]
    schedule = schedules.lr_schedule(lr, cfg["schedule"], steps_per_epoch, train_cfg["epochs"])
    heads = {t: tasks.TASKS[t].num_classes for t in cfg["tasks"]}
    return Experiment(
        cfg=cfg,
        splits=splits,
        model=models.build_model(cfg["model"], heads),
        tx=optim.freeze(optim.build_optimizer(cfg["optimizer"], schedule), cfg["train"]["freeze"]),
        plateau=schedules.plateau_controller(lr, cfg["schedule"]),
        schedule=schedule,
        steps_per_epoch=steps_per_epoch,
        loss_weights={t: float(cfg["loss_weights"].get(t, 1.0)) for t in cfg["tasks"]},
    )


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
    """Jitted `train(state, sums, data, idx, rng)` and `evaluate(params, stats, images, labels)`.

    `evaluate` runs a whole split in one call (a `lax.map` over chunks); on this CPU chunks of 32
    ran ~3x faster than batches of 1000.

    `train` takes one step per row of `idx` (a K×batch index matrix) inside a `lax.scan`, each
    gathering its batch from the device-resident `data` and adding its metrics into `sums`, so
    metrics leave the device once per epoch. On this CPU chunks of 10+ steps ran ~14 % faster than
    a Python loop of single steps (benchmarks/). State and sums are donated.
    """
    train_step = steps.make_train_step(exp.model, exp.tx, exp.loss_weights, resolve_microbatch(exp.cfg),
                                       exp.cfg["augment"])
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

    return jax.jit(train, donate_argnums=(0, 1)), jax.jit(evaluate)


def epoch_chunks(steps_per_epoch: int, chunk: int) -> list[tuple[int, int]]:
    """(first step, number of steps) of each train call in an epoch: full chunks, then the rest."""
    return [(start, min(chunk, steps_per_epoch - start)) for start in range(0, steps_per_epoch, chunk)]


def evaluate_split(evaluate: Callable, state: steps.TrainState, dataset: Mapping[str, jax.Array],
                   exp: Experiment) -> tuple[dict[str, float], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Metrics `task/metric` and `loss`, confusion matrices and predictions for one split."""
    labels = {t: dataset[t] for t in exp.loss_weights}
    out = jax.device_get(evaluate(state.params, state.batch_stats, dataset["image"], labels))
    n = len(dataset["image"])
    loss_sums = {t: float(np.sum(out[t][0], dtype=np.float64)) for t in exp.loss_weights}
    preds = {t: out[t][1] for t in exp.loss_weights}
    results, confusions = {}, {}
    for t, weight in exp.loss_weights.items():
        confusions[t] = metrics.confusion_matrix(np.asarray(dataset[t]), preds[t], tasks.TASKS[t].num_classes)
        results[f"{t}/loss"] = loss_sums[t] / n
        results.update({f"{t}/{k}": v for k, v in metrics.classification_metrics(confusions[t]).items()})
    results["loss"] = sum(w * results[f"{t}/loss"] for t, w in exp.loss_weights.items())
    return results, confusions, preds


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


def _log_line(record: Mapping[str, Any], task_names) -> str:
    parts = [f"epoch {record['epoch']:3d}", f"loss {record['train/loss']:.4f}/{record['val/loss']:.4f}"]
    parts += [f"{t} {100 * record[f'val/{t}/accuracy']:.2f}%" for t in task_names]
    parts += [f"lr {record['lr']:.2e}", f"{record['epoch_time_s']:.1f}s"]
    return " | ".join(parts)


def write_history(path: Path, history: list[dict]) -> None:
    """Rewrites metrics.jsonl from the history (atomically), one line per epoch."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in history))
    tmp.replace(path)


def train_and_evaluate(exp: Experiment, run_dir: Path, resume: bool = False
                       ) -> tuple[dict, dict[str, np.ndarray]]:
    """Trains `exp`, checkpointing every epoch into `run_dir`.

    Returns:
      The run summary (JSON-ready) and the test predictions per task.

    With `resume`, continues from the latest checkpoint in `run_dir`: state, epoch, history and
    early-stopping state are restored, and the data order of each epoch is a function of the seed
    and epoch only, so the remaining epochs replay as they would have.
    """
    cfg, train_cfg = exp.cfg, exp.cfg["train"]
    t_start = time.perf_counter()
    ckpts = checkpoint.RunCheckpoints(run_dir, keep=train_cfg["keep_checkpoints"])
    state, history = exp.init_state(), []
    stopper = EarlyStopping(train_cfg["monitor_mode"], train_cfg["early_stopping_patience"])
    if resume:
        state, meta = ckpts.restore(state, "latest")
        history = meta["history"]
        stopper = EarlyStopping(train_cfg["monitor_mode"], train_cfg["early_stopping_patience"],
                                **meta["early_stopping"])
    write_history(run_dir / "metrics.jsonl", history)

    train_fn, eval_jit = make_epoch_fns(exp)
    train_data, val_data = device_split(exp.splits["train"]), device_split(exp.splits["val"])
    rng, batch_size = exp.dropout_rng(), train_cfg["batch_size"]
    sums = jax.tree.map(lambda _: jnp.zeros(()), {"loss": 0, **{f"{t}/{m}": 0 for t in exp.loss_weights
                                                               for m in ("loss", "accuracy")}})
    chunks = epoch_chunks(exp.steps_per_epoch, resolve_steps_per_call(cfg))
    t_compile = time.perf_counter()
    compiled = {n: train_fn.lower(state, sums, train_data, jnp.zeros((n, batch_size), jnp.int32), rng).compile()
                for n in sorted({n for _, n in chunks})}
    val_labels = {t: val_data[t] for t in exp.loss_weights}
    eval_val = eval_jit.lower(state.params, state.batch_stats, val_data["image"], val_labels).compile()
    compile_time = time.perf_counter() - t_compile

    for epoch in range(len(history) + 1, train_cfg["epochs"] + 1):
        if stopper.should_stop:
            break
        t_epoch = time.perf_counter()
        perm = epoch_permutation(cfg["seed"], epoch, len(exp.splits["train"]))
        lr = float(exp.schedule(state.step)) * float(state.plateau.scale)
        sums = jax.tree.map(jnp.zeros_like, sums)
        with tqdm(total=exp.steps_per_epoch, desc=f"epoch {epoch}", leave=False, mininterval=1.0) as bar:
            for k, (start, n) in enumerate(chunks):
                idx = perm[start * batch_size:(start + n) * batch_size].reshape(n, batch_size)
                state, sums = compiled[n](state, sums, train_data, idx, rng)
                bar.update(n)
                if k % 10 == 9:  # Syncs with the device, so only now and then.
                    bar.set_postfix(loss=f"{float(sums['loss']) / (start + n):.4f}")
        train_metrics = {k: float(v) / exp.steps_per_epoch for k, v in jax.device_get(sums).items()}
        val_metrics, _, _ = evaluate_split(eval_val, state, val_data, exp)
        _, plateau = exp.plateau.update(jnp.zeros(()), state.plateau, value=val_metrics["loss"])
        state = state.replace(plateau=plateau)
        record = {"epoch": epoch, "lr": lr, "epoch_time_s": time.perf_counter() - t_epoch,
                  **{f"train/{k}": v for k, v in train_metrics.items()},
                  **{f"val/{k}": v for k, v in val_metrics.items()}}
        history.append(record)
        is_best = stopper.update(record[train_cfg["monitor"]], epoch)
        meta = {"epoch": epoch, "name": cfg["name"], "history": history,
                "early_stopping": stopper.state()}
        ckpts.save(epoch, state, meta, is_best)
        write_history(run_dir / "metrics.jsonl", history)
        tqdm.write(_log_line(record, exp.loss_weights))

    if train_cfg["restore_best"] and ckpts.best.latest_step() is not None:
        state, _ = ckpts.restore(state, "best")
    # The test split has its own shape, so `eval_jit` compiles once more here.
    test_metrics, confusions, preds = evaluate_split(eval_jit, state, device_split(exp.splits["test"]), exp)
    ckpts.close()
    epoch_times = [r["epoch_time_s"] for r in history]
    summary = {
        "name": cfg["name"],
        "epochs_run": len(history),
        "best_epoch": stopper.best_epoch,
        "test": test_metrics,
        "confusion": {t: c.tolist() for t, c in confusions.items()},
        "wall_time_s": time.perf_counter() - t_start,
        "mean_epoch_time_s": float(np.mean(epoch_times)) if epoch_times else 0.0,
        "compile_time_s": compile_time,
    }
    return summary, preds
