"""The training loop: restore or init, compile, then epochs of jitted train calls, each ended by
validation, plateau, diagnostics, early stopping, best-state selection, a checkpoint and a log.

The epoch is a Python loop over jitted calls of K steps each (`lax.scan` inside a call: fewer
dispatches; K = 1 for XLA's own convs on CPU, which slow down inside any loop there; the figures:
docs/performance.md, "Why the defaults"). Data stay on device as uint8; each call receives only its batches'
indices. All replicas (seeds, sweep points) train as one vmapped program; each has its own
initialisation, dropout keys, data order, plateau and early-stopping state, and its own best epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from mtljax import calibration, timing
from mtljax.data import stream
from mtljax.train import checkpoint, guard, parallel
from mtljax.train.epoch import (device_split, epoch_chunks, epoch_lrs, epoch_permutation, lookahead_data,
                                make_epoch_fns, pad_chunk, reset_sums, zero_sums)
from mtljax.train.evaluation import EvalData, eval_data, evaluate_split
from mtljax.train.experiment import Experiment, resolve_steps_per_call
from mtljax.train.monitor import EarlyStopping, make_diagnostics, seed_mean, select_seeds


@dataclasses.dataclass
class LoopState:
    """The host side of a run, stored as the checkpoint's `meta` beside the arrays.

    Attributes:
      name: the run's config name.
      history: one record per finished epoch (metrics.jsonl).
      stoppers: each replica's early-stopping state.
      position: inside a stopped epoch: its epoch, next call, learning rates and partial sums.
      best_saved: the epoch of the newest best checkpoint (0: none).
      nonfinite_steps: steps skipped for a NaN/Inf (train.nonfinite "skip").
      wall_s: wall seconds the run's earlier processes spent, up to their last checkpoint.
      clock: `time.perf_counter()` when this process's part of the run began.
    """

    name: str
    history: list[dict]
    stoppers: list[EarlyStopping]
    position: dict | None = None
    best_saved: int = 0
    nonfinite_steps: int = 0
    wall_s: float = 0.0
    clock: float = dataclasses.field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        """The run's wall seconds so far, over every process that worked on it: a resumed run's
        summary counts its whole time, not only the last process's."""
        return self.wall_s + time.perf_counter() - self.clock

    @property
    def first_epoch(self) -> int:
        """The epoch to run next."""
        return self.position["epoch"] if self.position else len(self.history) + 1

    def meta(self, epoch_done: int, position: dict | None = None) -> dict:
        """The checkpoint's meta dict (the layout every mtljax checkpoint has used)."""
        return {"epoch": epoch_done, "name": self.name, "history": self.history, "position": position,
                "early_stopping": [s.state() for s in self.stoppers], "best_saved": self.best_saved,
                "nonfinite_steps": self.nonfinite_steps, "wall_s": self.elapsed()}

    @classmethod
    def from_meta(cls, meta: dict, new_stopper: Callable[..., EarlyStopping]) -> LoopState:
        return cls(meta["name"], meta["history"], [new_stopper(**kw) for kw in meta["early_stopping"]],
                   meta["position"], meta["best_saved"], meta["nonfinite_steps"], meta.get("wall_s", 0.0))


@dataclasses.dataclass
class Run:
    """A run in progress: the experiment, its device state and the compiled calls."""

    exp: Experiment
    ckpts: checkpoint.RunCheckpoints
    state: Any
    best: Any
    loop: LoopState
    mesh: Any = None
    calls: dict = dataclasses.field(default_factory=dict)  # The compiled train, eval, plateau and diagnose calls.
    data: dict = dataclasses.field(default_factory=dict)  # Device data: train, val, sums, rng.
    chunks: list[tuple[int, int]] = dataclasses.field(default_factory=list)  # (first step, steps) of each call.
    call_steps: int = 1  # Rows of every train call (the last one padded).

    def global_step(self) -> int:
        return int(parallel.host_value(self.state.step)[0])


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What a finished run hands to the outputs: its history, test metrics and predictions."""

    history: list[dict]
    best_epochs: list[int]
    test_seeds: list[dict[str, float]]
    test_preds: dict[str, np.ndarray]
    test_truth: dict[str, np.ndarray]
    wall_time_s: float
    compile_time_s: float
    nonfinite_steps: int
    calibration: dict | None = None  # calibration.fit_run's record; None without classification tasks.
    trees: list | None = None  # A Learning-to-Branch search's chosen tree, per replica (best state).


def train_and_evaluate(exp: Experiment, run_dir: Path, resume: bool = False, log: Any = None) -> RunResult:
    """Trains `exp`, checkpointing every epoch into `run_dir`; then tests the best state.

    With `resume`, continues from the latest checkpoint in `run_dir`: state, best state, position
    inside a stopped epoch (with its partial sums), history and early stopping are restored, and
    each epoch's data order is a function of the seed and epoch only, so the run continues bit for
    bit as it would have. `log` (mtljax/outputs/history.py) gets the history at the start, after
    every epoch and once training ends (`start`, `epoch`, `trained`).

    Raises:
      guard.StopRequested: SIGINT/SIGTERM; the current jitted call finished and was checkpointed.
      guard.NonFiniteError: a NaN/Inf step with train.nonfinite "stop"; this epoch is not saved.
      checkpoint.CheckpointWriteError, OSError: a checkpoint or log could not be written.
    """
    t_start = time.perf_counter()
    with timing.phase("init"):
        run = restore_or_init(exp, run_dir, resume)
    run.loop.clock = t_start  # This process's part began before the restore.
    if log is not None:
        log.start(run.loop.history)
    compile_time = compile_calls(run)
    with guard.stop_signals() as received, run.ckpts.finishing_writes():
        for epoch in range(run.loop.first_epoch, exp.cfg["train"]["epochs"] + 1):
            if all(stopper.should_stop for stopper in run.loop.stoppers):
                break
            t_epoch = time.perf_counter()
            with timing.phase("training"):
                sums, lrs = run_epoch(run, epoch, received)
            end_epoch(run, epoch, sums, lrs, time.perf_counter() - t_epoch)
            if log is not None:
                with timing.phase("epoch log"):
                    log.epoch(run.loop.history)
    if log is not None:
        log.trained(run.loop.history)
    test_seeds, preds, truth, fitted = test(run)
    with timing.phase("checkpoints"):
        run.ckpts.close()
    return RunResult(run.loop.history, [s.best_epoch for s in run.loop.stoppers], test_seeds, preds, truth,
                     run.loop.elapsed(), compile_time, run.loop.nonfinite_steps, fitted, chosen_trees(run))


def chosen_trees(run: Run) -> list | None:
    """Each replica's chosen tree, from its best state, where the model searched one
    (`LearningToBranch.chosen_tree`); else None."""
    model = run.exp.model
    if not hasattr(model, "chosen_tree") or model.fixed:
        return None
    params = parallel.host_value(run.best.params)
    return [model.chosen_tree(jax.tree.map(lambda a: a[k], params)) for k in range(len(run.exp.seeds))]


def restore_or_init(exp: Experiment, run_dir: Path, resume: bool) -> Run:
    """A fresh run's initial state, or with `resume` the latest checkpoint's (and its loop state)."""
    train_cfg = exp.cfg["train"]
    ckpts = checkpoint.RunCheckpoints(run_dir, keep=train_cfg["keep_checkpoints"])
    new_stopper = lambda **kw: EarlyStopping(train_cfg["monitor_mode"], train_cfg["early_stopping_patience"], **kw)
    state = exp.init_state()
    best = jax.tree.map(jnp.copy, state)  # Its own buffers: `state`'s are donated to every call.
    loop = LoopState(exp.cfg["name"], [], [new_stopper() for _ in exp.seeds])
    if resume and ckpts.latest.latest_step() is None:  # Died before its first checkpoint.
        print(f"resume: no checkpoint in {run_dir} yet; starting it from the beginning")
    elif resume:
        tree, meta = ckpts.restore({"train": state, "best": best}, "latest")
        state, best, loop = tree["train"], tree["best"], LoopState.from_meta(meta, new_stopper)
        if loop.best_saved and ckpts.best.latest_step() != loop.best_saved:  # Died between the two writes.
            ckpts.save_best(loop.best_saved, best, meta)
    return Run(exp, ckpts, state, best, loop)


def compile_calls(run: Run) -> float:
    """Places state and data on the devices and compiles the train and evaluation calls (and the
    plateau update and diagnostics) into `run.calls`; returns the seconds it took."""
    exp, cfg = run.exp, run.exp.cfg
    batch_size, n_replicas = cfg["train"]["batch_size"], len(exp.seeds)
    run.mesh = mesh = parallel.data_mesh()  # None on one device; else batches are split over all of them.
    if mesh is not None and batch_size % mesh.size:
        raise ValueError(f"train.batch_size {batch_size} is not a multiple of the {mesh.size} devices")
    t_place = time.perf_counter()
    train_fn, eval_fn = make_epoch_fns(exp)
    run.data["val"] = eval_data(exp.splits["val"], exp, mesh)
    call_steps = min(resolve_steps_per_call(cfg), exp.steps_per_epoch)
    # Streamed, every call receives its own items (stream.call_items), n_replicas × call_steps × batch of them.
    train_data = (call_placeholder(exp, n_replicas * call_steps * batch_size) if exp.streamed
                  else device_split(exp.splits["train"]))
    run.state, run.best, run.data["sums"], run.data["train"], run.data["rng"] = parallel.replicate(
        (run.state, run.best, zero_sums(exp.tasks, n_replicas), train_data, exp.dropout_rng()), mesh)
    look = lookahead_data(exp)
    run.data["lookahead"] = None if look is None else parallel.replicate(look, mesh)
    timing.add("data on device", time.perf_counter() - t_place)
    t_compile = time.perf_counter()
    block = run.data["val"].blocks[0]
    idx = parallel.shard_batch(np.zeros((n_replicas, call_steps, batch_size), np.int32), mesh)
    with cache_use() as cache:
        lowered = [train_fn.lower(run.state, run.data["sums"], call_data(run, run.data["train"]), idx, run.data["rng"]),
                   eval_fn.lower(run.state.params, run.state.batch_stats, block["image"],
                                 {t: block[t] for t in exp.loss_weights})]
        run.calls["train"], run.calls["eval"] = [low.compile() for low in lowered]  # In threads: no faster (measured).
    run.calls["plateau"] = jax.jit(jax.vmap(lambda st, v: exp.plateau.update(jnp.zeros(()), st, value=v)[1]))
    run.chunks, run.call_steps = epoch_chunks(exp.steps_per_epoch, call_steps), call_steps
    every = cfg["mtl"]["diagnose_every"]
    if every and len(exp.tasks) > 1:
        run.calls["diagnose"] = make_diagnostics(exp, first_items(exp) if exp.streamed else run.data["train"])
    else:
        run.calls["diagnose"] = None
    seconds = time.perf_counter() - t_compile
    timing.add("compile (cache)" if cache and set(cache) == {"hit"} else "compile (cold)", seconds)
    return seconds


@contextlib.contextmanager
def cache_use() -> Iterator[list[str]]:
    """Inside: a list that collects "hit" or "miss" for each program looked up in JAX's persistent
    compilation cache (empty when the cache is off)."""
    events: list[str] = []
    names = {"/jax/compilation_cache/cache_hits": "hit", "/jax/compilation_cache/cache_misses": "miss"}
    listener = lambda event, **_: events.append(names[event]) if event in names else None
    jax.monitoring.register_event_listener(listener)
    try:
        yield events
    finally:
        jax.monitoring.unregister_event_listener(listener)


def call_data(run: Run, dataset: dict) -> dict:
    """A train call's data: the training items, with the look-ahead split where there is one."""
    look = run.data.get("lookahead")
    return dataset if look is None else {**dataset, "lookahead": look}


def call_placeholder(exp: Experiment, n: int) -> dict[str, np.ndarray]:
    """A streamed run's train-call items for compiling: n zeros of each array's shape and type."""
    split = exp.splits["train"]
    return {"image": np.zeros((n, *split.images.shape[1:]), np.uint8),
            **{t: np.zeros(n, y.dtype) for t, y in split.labels.items()}}


def first_items(exp: Experiment) -> dict[str, jax.Array]:
    """A streamed run's first `mtl.diagnose_batch` training items on device: the diagnostics' batch."""
    split = exp.splits["train"]
    count = min(exp.cfg["mtl"]["diagnose_batch"], len(split))
    return {"image": jnp.asarray(split.images.read(np.arange(count))),
            **{t: jnp.asarray(y[:count]) for t, y in split.labels.items()}}


def run_epoch(run: Run, epoch: int, received: list[int]) -> tuple[dict[str, np.ndarray], list[float]]:
    """Trains one epoch (or the rest of a stopped one); returns its metric sums and learning rates.

    Raises:
      guard.StopRequested: a signal arrived; the state after the current call was checkpointed.
    """
    exp, loop, train_cfg = run.exp, run.loop, run.exp.cfg["train"]
    batch_size, chunks = train_cfg["batch_size"], run.chunks
    perms = [epoch_permutation(seed, epoch, len(exp.splits["train"])) for seed in exp.seeds]
    if loop.position:  # Resuming inside this epoch: its learning rates and partial sums.
        start, lrs = loop.position["chunk"], loop.position["lrs"]
        sums = parallel.replicate({k: np.asarray(v, np.float32) for k, v in loop.position["sums"].items()}, run.mesh)
        loop.position = None
    else:
        start, lrs, sums = 0, epoch_lrs(exp, run.state), reset_sums(run.data["sums"])
    check = lambda sums_host: guard.check_finite(sums_host, exp.loss_weights, epoch, train_cfg["nonfinite"])
    with tqdm(total=exp.steps_per_epoch, initial=sum(n for _, n in chunks[:start]), desc=f"epoch {epoch}",
              leave=False, mininterval=1.0, disable=not parallel.is_primary()) as bar:
        calls = [pad_chunk(np.stack([p[first * batch_size:(first + n) * batch_size].reshape(n, batch_size)
                                     for p in perms]), run.call_steps) for first, n in chunks[start:]]
        train = exp.splits["train"]
        streamed = stream.prefetch(calls, train.images, train.labels) if exp.streamed else None
        for k, idx in zip(range(start, len(chunks)), calls):
            first, n = chunks[k]
            dataset = run.data["train"]
            if streamed is not None:  # This call's own items, read ahead while the previous call trained.
                items, idx = next(streamed)
                dataset = parallel.replicate(items, run.mesh)
            idx = parallel.shard_batch(idx, run.mesh)
            run.state, sums = run.calls["train"](run.state, sums, call_data(run, dataset), idx, run.data["rng"])
            bar.update(n)
            if k % 10 == 9:  # Syncs with the device, so only now and then.
                sums_host = parallel.host_value(sums)
                check(sums_host)
                bar.set_postfix(loss=f"{sums_host['loss'].mean() / (first + n):.4f}")
            if received:
                sums_host = parallel.host_value(sums)
                check(sums_host)
                at = {"epoch": epoch, "chunk": k + 1, "lrs": lrs, "sums": {key: v.tolist() for key, v in sums_host.items()}}
                run.ckpts.save(run.global_step(), {"train": run.state, "best": run.best}, loop.meta(epoch - 1, at))
                raise guard.StopRequested(received[0], epoch, run.global_step())
    run.data["sums"] = sums
    sums_host = parallel.host_value(sums)
    loop.nonfinite_steps += check(sums_host)
    return sums_host, lrs


def end_epoch(run: Run, epoch: int, sums: dict[str, np.ndarray], lrs: list[float], seconds: float) -> None:
    """Validates, steps the plateau controller, diagnoses, records the epoch, updates early stopping
    and the best state, and queues the epoch's checkpoint."""
    exp, loop, n_replicas = run.exp, run.loop, len(run.exp.seeds)
    counted = np.maximum(exp.steps_per_epoch - sums["nan/steps"], 1)  # Skipped steps add zeros.
    train_replicas = [{key: float(v[k]) / float(counted[k]) for key, v in sums.items() if not key.startswith("nan/")}
                   | {"nonfinite_steps": float(sums["nan/steps"][k])} for k in range(n_replicas)]
    with timing.phase("validation"):
        val_replicas, _, run.data["val_logits"] = evaluate_split(run.calls["eval"], run.state, run.data["val"], exp)
        val_loss = np.asarray([m["loss"] for m in val_replicas], np.float32)
        run.state = run.state.replace(plateau=run.calls["plateau"](run.state.plateau, val_loss))
    per_seed = [{"lr": lr, **{f"train/{key}": v for key, v in tr.items()}, **{f"val/{key}": v for key, v in va.items()}}
                for lr, tr, va in zip(lrs, train_replicas, val_replicas)]
    if run.calls["diagnose"] is not None and epoch % exp.cfg["mtl"]["diagnose_every"] == 0:
        with timing.phase("diagnostics"):
            diagnosed = run.calls["diagnose"](run.state)
        for key, values in diagnosed.items():
            for m, v in zip(per_seed, values):
                m[key] = v
    record = {"epoch": epoch, "epoch_time_s": seconds, **seed_mean(per_seed)}
    if n_replicas > 1:
        record["seeds"] = {key: [m[key] for m in per_seed] for key in per_seed[0]}
    loop.history.append(record)
    monitor = exp.cfg["train"]["monitor"]
    improved = np.array([stopper.update(m[monitor], epoch) for stopper, m in zip(loop.stoppers, per_seed)])
    if improved.any():
        run.best, loop.best_saved = select_seeds(improved, run.state, run.best), epoch
    # Written while the next epoch trains. Latest first: it holds the best state too, so a death
    # between the writes loses nothing.
    with timing.phase("checkpoints"):
        run.ckpts.save_epoch(run.global_step(), {"train": run.state, "best": run.best}, loop.meta(epoch),
                             best_epoch=epoch if improved.any() else None)


def test(run: Run) -> tuple[list[dict[str, float]], dict[str, np.ndarray], dict[str, np.ndarray], dict | None]:
    """Per-seed test metrics, predictions (S×N per task) and labels, of the best state
    (`train.restore_best`) or the last one; and that state's temperature scaling, fitted on the
    validation split alone (`calibration.fit_run`; None without classification tasks)."""
    exp = run.exp
    restore = exp.cfg["train"]["restore_best"] and run.loop.best_saved
    state = run.best if restore else run.state
    # The last validation's logits are `state`'s when it is the last state (or every replica's best
    # is the last epoch): calibration then reuses them instead of evaluating the split again.
    last = run.loop.history[-1]["epoch"] if run.loop.history else None
    same = not restore or all(stopper.best_epoch == last for stopper in run.loop.stoppers)
    val_logits = run.data.get("val_logits") if same else None
    with timing.phase("test"):
        test_data: EvalData = eval_data(exp.splits["test"], exp, run.mesh)
        test_seeds, preds, test_logits = evaluate_split(run.calls["eval"], state, test_data, exp)
    classify = [t for t, task in exp.tasks.items() if task.kind == "classification"]
    fitted = None
    if classify and run.data["val"].size:
        with timing.phase("calibration"):
            if val_logits is None:
                _, _, val_logits = evaluate_split(run.calls["eval"], state, run.data["val"], exp)
            fitted = calibration.fit_run({t: (val_logits[t], run.data["val"].truth[t]) for t in classify},
                                         {t: (test_logits[t], test_data.truth[t]) for t in classify})
    return test_seeds, preds, test_data.truth, fitted
