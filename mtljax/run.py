"""`python -m mtljax.run EXPERIMENT.py [--set key=value ...] [--resume]`: train, evaluate, report.

Kept short on purpose: everything it calls is importable and tested on its own.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mtljax import checkpoint, config, mnist, plots, rundir, tasks, trainer


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit code 2."""


def write_outputs(run_dir: Path, exp: trainer.Experiment, summary: dict, preds: Mapping[str, np.ndarray]) -> None:
    """summary.json and the figures of a finished run."""
    rundir.write_json(run_dir / rundir.SUMMARY_FILE, summary)
    history = [r for r in map(__import__("json").loads, (run_dir / rundir.METRICS_FILE).read_text().splitlines())]
    names = list(exp.loss_weights)
    plots.plot_curves(history, names, run_dir / "curves.png")
    for t in names:
        plots.plot_confusion(summary["confusion"][t], tasks.TASKS[t].class_names,
                             f"{t} (test)", run_dir / f"confusion_{t}.png")
    test = exp.splits["test"]
    plots.plot_samples(test.images, test.labels, preds, {t: tasks.TASKS[t].class_names for t in names},
                       run_dir / "samples.png")


def resolve_run(args: argparse.Namespace) -> tuple[Mapping[str, Any], Path | None]:
    """The validated config and, with --resume, the run directory to continue."""
    cfg = config.load_experiment(args.experiment, args.set)
    if not args.resume:
        return cfg, None
    run_dir = Path(args.run_dir) if args.run_dir else rundir.latest_run_dir(args.root, cfg["name"])
    if run_dir is None or not (run_dir / rundir.CONFIG_FILE).exists():
        raise UsageError(f"--resume: no run of {cfg['name']!r} under {args.root}/{cfg['name']}/")
    saved = rundir.read_json(run_dir / rundir.CONFIG_FILE)
    if saved.get("name") != cfg["name"]:
        raise UsageError(f"--resume: {run_dir} is a run of {saved.get('name')!r}, not {cfg['name']!r}")
    # The run continues with its own config; --set may still change it (e.g. train.epochs).
    return config.resolve(config.apply_overrides(saved, args.set)), run_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtljax.run", description=__doc__.splitlines()[0])
    parser.add_argument("experiment", help="experiment file, e.g. experiments/threshold.py")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="dotted overrides, e.g. optimizer.lr=3e-4 train.epochs=2")
    parser.add_argument("--resume", action="store_true", help="continue the latest run from its last checkpoint")
    parser.add_argument("--run-dir", help="with --resume: the run directory to continue")
    parser.add_argument("--root", default="checkpoints", help="where run directories go")
    args = parser.parse_args(argv)
    try:
        cfg, run_dir = resolve_run(args)
        exp = trainer.build_experiment(cfg)  # Loads the data before anything is written.
    except (config.ConfigError, mnist.DataError, UsageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if run_dir is None:
        run_dir = rundir.new_run_dir(Path(args.root), cfg["name"])
    rundir.write_json(run_dir / rundir.CONFIG_FILE, config.thaw(cfg))
    print(f"run directory: {run_dir}")
    try:
        summary, preds = trainer.train_and_evaluate(exp, run_dir, resume=args.resume)
    except checkpoint.CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: python -m mtljax.run {args.experiment} --resume "
              f"--run-dir {run_dir}", file=sys.stderr)
        return 130
    write_outputs(run_dir, exp, summary, preds)
    line = " | ".join(f"{t} {100 * summary['test'][f'{t}/accuracy']:.2f}%" for t in exp.loss_weights)
    print(f"test: {line} | wall {summary['wall_time_s']:.0f}s -> {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
