"""`python -m mtljax.run EXPERIMENT.py [--set key=value ...] [--seeds N] [--sweep key=v1,v2 ...] [--resume]`.

Trains, evaluates and reports an experiment.

Kept short on purpose: everything it calls is importable and tested on its own. An experiment file
defines `CONFIG`, or `STAGES` (run in order; a stage can start from an earlier one's checkpoint).
"""

from __future__ import annotations

import argparse
import atexit
import itertools
import json
import os
import resource
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from mtljax import calibration, config, timing
from mtljax.data import mnist
from mtljax.outputs import background, history, plots, rundir, summary as summaries, tblog
from mtljax.train import checkpoint, guard, loop, parallel, sweeps
from mtljax.train.experiment import Experiment, build_experiment


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit code 2."""


def write_figures(outputs: background.Background, run_dir: Path, exp: Experiment, summary: dict,
                  preds: Mapping[str, np.ndarray], records: list[dict]) -> None:
    """Queues the figures of a finished run that need its test results, then the TensorBoard events
    of its history `records` with every figure (`preds`: the first seed's test predictions). The
    learning curves were queued when training ended (`history.EpochLog.trained`)."""
    for t, confusion in summary["confusion"].items():
        outputs.submit("figures", plots.plot_confusion, confusion, exp.tasks[t].class_names, f"{t} (test)",
                       run_dir / f"confusion_{t}.png")
    test, count = exp.splits["test"], 24
    outputs.submit("figures", plots.plot_samples, np.asarray(test.images[:count]),
                   {t: np.asarray(y[:count]) for t, y in test.labels.items()},
                   {t: p[:count] for t, p in preds.items()}, exp.tasks, run_dir / "samples.png", count)
    if any(k.startswith("loss_weights.") for k in summary.get("sweep", {}).get("keys", [])):
        for pair in itertools.combinations(list(exp.loss_weights), 2):  # The trade-off between each two tasks.
            outputs.submit("figures", plots.plot_pareto, summary, pair, run_dir / f"pareto_{pair[0]}_{pair[1]}.png")
    # The figures are listed when the job runs, after those queued before it are drawn.
    outputs.submit("tensorboard", lambda: tblog.write_events(run_dir, records, sorted(run_dir.glob("*.png"))))


def resume_dir(cfg: Mapping[str, Any], args: argparse.Namespace) -> tuple[Mapping[str, Any], Path]:
    """With --resume: the run directory to continue, and its own config (with --set applied)."""
    run_dir = Path(args.run_dir) if args.run_dir else rundir.latest_run_dir(args.root, cfg["name"])
    if run_dir is None or not (run_dir / rundir.CONFIG_FILE).exists():
        raise UsageError(f"--resume: no run of {cfg['name']!r} under {args.root}/{cfg['name']}/")
    saved = config.upgrade(rundir.read_json(run_dir / rundir.CONFIG_FILE))
    if saved.get("name") != cfg["name"]:
        raise UsageError(f"--resume: {run_dir} is a run of {saved.get('name')!r}, not {cfg['name']!r}")
    # The run continues with its own config; --set may still change it (e.g. train.epochs).
    return config.resolve(config.apply_overrides(saved, args.set)), run_dir


def peak_rss_mib() -> float:
    """This process's peak resident memory so far: Linux's VmHWM, the high-water mark of this
    program's own memory. (`ru_maxrss` also counts the pages a process shared with its parent
    before exec, several times the run's own memory.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, bytes on macOS.


TREE_FILE = "tree.json"  # A Learning-to-Branch search's chosen tree.


def train_run(exp: Experiment, run_dir: Path, resume: bool, began: tuple) -> dict:
    """Trains into `run_dir` (config, metrics, checkpoints, figures, then summary); returns the summary.
    On many processes all train, and process 0 alone writes the files other than checkpoints.
    The summary's `timing` counts from `began` (`timing.mark()` when the run began)."""
    if parallel.is_primary():
        rundir.write_json(run_dir / rundir.CONFIG_FILE, config.thaw(exp.cfg))
    version = rundir.code_version()  # At the start: the checkout may change while it trains.
    outputs = background.Background()  # Figures and events, on a thread; all written before the summary.
    try:
        result = loop.train_and_evaluate(exp, run_dir, resume=resume, log=history.EpochLog(run_dir, exp.tasks, outputs))
        with timing.phase("summary"):
            summary = summaries.build_summary(exp, result)
        summary.update(code_version=version, peak_rss_mib=peak_rss_mib())
        if result.calibration is not None:
            summary["calibration"] = result.calibration["mean"]
        if result.trees is not None:
            summary["tree"] = result.trees[0]
        if parallel.is_primary():
            if result.trees is not None:  # A search's choice, for a later stage (`model.branch.tree: 'stage:<name>'`).
                rundir.write_json(run_dir / TREE_FILE, {"tree": result.trees[0], "per_seed": result.trees})
                outputs.submit("figures", plots.plot_tree, result.trees[0], list(exp.tasks), run_dir / "tree.png")
            if result.calibration is not None:
                rundir.write_json(run_dir / calibration.CALIBRATION_FILE, result.calibration)
            write_figures(outputs, run_dir, exp, summary, {t: p[0] for t, p in result.test_preds.items()},
                          result.history)
    finally:
        outputs.close()
    summary["timing"] = timing.report(began)
    if parallel.is_primary():  # Last: a run directory with a summary is complete.
        rundir.write_json(run_dir / rundir.SUMMARY_FILE, summary)
    return summary


def single_task_config(cfg: Mapping[str, Any], task: str) -> Mapping[str, Any]:
    """`cfg` for one task alone: same backbone and recipe, one head (hard sharing's network)."""
    plain = config.thaw(cfg)
    plain.update(tasks=[task], single_task=False,
                 loss_weights={t: w for t, w in plain["loss_weights"].items() if t == task},
                 sweep={k: v for k, v in plain["sweep"].items() if not k.startswith("loss_weights.")},
                 pareto={**plain["pareto"], "rays": 0})
    architecture = plain["model"].get("architecture", "hard")  # One task alone: hard sharing's network.
    plain["model"].pop(architecture, None)
    plain["model"]["architecture"] = "hard"
    for section, key in (("train", "freeze"), ("init", "params")):
        names = ["backbone" if n == "shared" else n for n in plain[section][key]]
        plain[section][key] = [n for n in names if n in ("backbone", f"head_{task}")]
    if plain["train"]["monitor"] != "val/loss" and plain["train"]["monitor"].split("/")[1] != task:
        plain["train"]["monitor"] = "val/loss"  # The monitored task is not in this run.
    return config.resolve(plain)


def run_stage(cfg: Mapping[str, Any], args: argparse.Namespace, stage_dirs: dict[str, Path]) -> int:
    """Runs one stage (and its single-task baselines); returns the exit code."""
    began = timing.mark(process_start=True)  # The process's first run counts from the process's start.
    run = cfg["init"]["run"]
    if run and run.startswith("stage:"):
        cfg = config.resolve(config.apply_overrides(cfg, [f"init.run={stage_dirs[run[6:]]}"]))
    tree = cfg["model"].get("branch", {}).get("tree")
    if isinstance(tree, str):  # The tree an earlier stage's search chose.
        chosen = json.loads((stage_dirs[tree[6:]] / TREE_FILE).read_text())["tree"]
        cfg = config.resolve(config.apply_overrides(cfg, [f"model.branch.tree={chosen}"]))
    try:
        cfg, run_dir = resume_dir(cfg, args) if args.resume else (cfg, None)
        with timing.phase("data"):
            exp = build_experiment(cfg)  # Loads the data before anything is written.
    except (config.ConfigError, mnist.DataError, UsageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if run_dir is None:  # Process 0 creates it; the others take its name.
        created = str(rundir.new_run_dir(Path(args.root), cfg["name"])) if parallel.is_primary() else ""
        run_dir = Path(parallel.broadcast_text(created))
    print(f"run directory: {run_dir}")
    try:
        summary = train_run(exp, run_dir, args.resume, began)
        if cfg["single_task"]:
            summary["single_task"] = {}
            for t in cfg["tasks"]:
                print(f"single-task baseline: {t}")
                sub_dir = run_dir / "single" / t
                sub_dir.mkdir(parents=True, exist_ok=True)
                sub_began = timing.mark()
                with timing.phase("data"):
                    sub_exp = build_experiment(single_task_config(cfg, t))
                sub = train_run(sub_exp, sub_dir, False, sub_began)
                summary["single_task"][t] = {k: v for k, v in sub["test"].items() if k.startswith(f"{t}/")}
            if parallel.is_primary():
                rundir.write_json(run_dir / rundir.SUMMARY_FILE, summary)
    except checkpoint.CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except guard.StopRequested as exc:
        print(f"\n{exc}; continue with: python -m mtljax.run {args.experiment} --resume --run-dir {run_dir}",
              file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:  # Outside the training loop (compiling, evaluating, plotting).
        print(f"\ninterrupted; continue with: python -m mtljax.run {args.experiment} --resume "
              f"--run-dir {run_dir}", file=sys.stderr)
        return 130
    except guard.NonFiniteError as exc:
        print(f"error: {exc}; run directory {run_dir}", file=sys.stderr)
        return 1
    except OSError as exc:  # Disk full, read-only directory: the checkpoints written so far stay.
        print(f"error: cannot write the run's files: {exc}; the last complete checkpoint in {run_dir} is "
              f"intact: free space or fix permissions, then --resume --run-dir {run_dir}", file=sys.stderr)
        return 1
    stage_dirs[cfg["name"]] = run_dir
    if "sweep" in summary:
        print(summaries.markdown_table(summary))
    print(f"test: {' | '.join(test_line(summary))} | wall {summary['wall_time_s']:.0f}s -> {run_dir}")
    return 0


def test_line(summary: Mapping[str, Any]) -> list[str]:
    """Each task's headline test metric (± std over seeds; majority vote and single-task beside)."""
    parts, stats = [], summary.get("test_stats", {})
    for t, metric in summaries.headlines(summary).items():
        key, unit = f"{t}/{metric}", "%" if metric == "accuracy" else f" {metric}"
        single = summary.get("single_task", {}).get(t, {}).get(key)
        spread = f" ± {summaries.format_metric(metric, stats[key]['std'])}" if stats else ""
        vote = summary.get("test_vote", {}).get(key)
        parts.append(f"{t} {summaries.format_metric(metric, summary['test'][key])}{spread}{unit}"
                     + (f" (majority vote {100 * vote:.2f}%)" if vote is not None else "")
                     + (f" (single-task {summaries.format_metric(metric, single)}{unit})" if single is not None else ""))
    return parts


def enable_compile_cache(setting: str | None) -> Path | None:
    """Turns on JAX's persistent compilation cache, so a rerun of an experiment (same code, same
    shapes) loads its compiled steps instead of compiling them again (~4 s of a threshold.py run).

    Args:
      setting: a directory, or "off"; None: $MTLJAX_COMPILE_CACHE, else `xla/` in the data directory
        (`mnist.default_data_dir()`: ~/.cache/mtljax unless $MTLJAX_DATA_DIR or $XDG_CACHE_HOME say otherwise).
    """
    setting = setting or os.environ.get("MTLJAX_COMPILE_CACHE")
    if setting == "off":
        return None
    path = Path(setting).expanduser() if setting else mnist.default_data_dir() / "xla"
    jax.config.update("jax_compilation_cache_dir", str(path))
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:  # JAX's own setting wins.
        # Every program, however quick to compile: reading a small one back is quicker still (the
        # speedrun's init 0.5 -> 0.37 s, its validation 0.19 -> 0.12 s; ~60 files, 0.5 MB, per model).
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    timing.imports_done()
    parser = argparse.ArgumentParser(prog="python -m mtljax.run", description=__doc__.splitlines()[0])
    parser.add_argument("experiment", help="experiment file, e.g. experiments/threshold.py")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="dotted overrides, e.g. optimizer.lr=3e-4 train.epochs=2")
    parser.add_argument("--resume", action="store_true", help="continue the latest run from its last checkpoint")
    parser.add_argument("--run-dir", help="with --resume: the run directory to continue")
    parser.add_argument("--root", default="checkpoints", help="where run directories go")
    parser.add_argument("--seeds", type=int, help="train this many seeds in one compiled program (config `seeds`, `train.replicas`)")
    parser.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="train these values (times the seeds) in one program, e.g. "
                             "loss_weights.parity=0.25,0.5,1,2,4; repeat for a grid (mtljax/train/sweeps.py)")
    parser.add_argument("--compile-cache", metavar="DIR",
                        help="persistent XLA compilation cache: a directory, or 'off' (default: "
                             "$MTLJAX_COMPILE_CACHE, else xla/ in the data directory, ~/.cache/mtljax/xla)")
    args = parser.parse_args(argv)
    parallel.deterministic_gpu_kernels()
    enable_compile_cache(args.compile_cache)
    try:
        parallel.initialize_from_env()  # Before anything touches a device.
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.seeds is not None:
        args.set = [*args.set, f"seeds={args.seeds}"]
    try:
        for item in args.sweep:
            try:
                key, values = sweeps.parse_sweep(item)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            args.set = [*args.set, f"sweep.{key}={values!r}"]
        with timing.phase("config"):
            stages = config.load_stages(args.experiment, args.set)  # Every stage is validated first.
        if args.resume and len(stages) > 1:
            raise UsageError("--resume: not for multi-stage experiments; resume a stage with its own "
                             "--run-dir and a single-stage file")
    except (config.ConfigError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stage_dirs: dict[str, Path] = {}
    for cfg in stages:
        code = run_stage(cfg, args, stage_dirs)
        if code:
            return code
    return 0


def exit_now(code: int) -> None:
    """Ends the process with `code` once every file is written: the exit handlers run (jax's,
    `jax.distributed`'s shutdown among them) and the streams are flushed, but the interpreter's
    teardown of jax, XLA, Orbax and matplotlib, 0.3-0.9 s of a finished run, is skipped."""
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
