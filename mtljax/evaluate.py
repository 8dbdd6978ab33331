"""`python -m mtljax.evaluate RUN_DIR [--which best|latest] [--seed K] [--no-ema] [--calibrate] [--preference R1,R2]`: test metrics from a checkpoint.

Restores the run's best (or latest) checkpoint with the run's own config, evaluates the test split
and prints the metrics per task (of seed K alone, or the mean over the run's seeds); when
`summary.json` exists, says whether they equal it (`--no-ema`: the trained weights of a run that
kept a moving average, not compared). With `--calibrate`, fits the temperatures on
the validation split instead (`mtljax.calibration`; runs made before calibration existed) and
writes them into the run's `calibration.json`. A run of one model for every preference ray
(`pareto.condition`) is evaluated at `--preference` (default: its configured ray).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Sequence

from mtljax import calibration, config
from mtljax.data import mnist
from mtljax.outputs import rundir
from mtljax.train import checkpoint, sweeps
from mtljax.train.epoch import make_epoch_fns
from mtljax.train.evaluation import eval_data, evaluate_split
from mtljax.train.experiment import build_experiment
from mtljax.train.monitor import seed_mean


def restore_run(run_dir: Path, which: str = "best", preference: Sequence[float] | None = None):
    """The run's experiment (its own config and data), its `which` checkpoint's state and the
    jitted evaluation (`make_epoch_fns`); a preference-conditioned run's at `preference` (T numbers).

    Raises:
      config.ConfigError: a preference for a run that is not conditioned, or not a ray of its tasks.
    """
    cfg = with_preference(config.load_run_config(run_dir), preference)
    exp = build_experiment(cfg)
    ckpts = checkpoint.RunCheckpoints(run_dir, keep=cfg["train"]["keep_checkpoints"])
    try:
        template = exp.init_state()
        if which == "latest":  # The latest checkpoint holds the training state and the best one.
            state = ckpts.restore({"train": template, "best": template}, which)[0]["train"]
        else:
            state, _ = ckpts.restore(template, which)
    finally:
        ckpts.close()
    return exp, state, make_epoch_fns(exp)[1]


def with_preference(cfg, preference: Sequence[float] | None):
    """`cfg` evaluated at `preference` (`pareto.preference`), validated; `cfg` itself for None."""
    if preference is None:
        return cfg
    return config.resolve(config.apply_overrides(cfg, [f"pareto.preference={list(preference)!r}"]))


def evaluate_run(run_dir: Path, which: str = "best", ema: bool = True,
                 preference: Sequence[float] | None = None) -> list[dict[str, float]]:
    """Test metrics (`task/metric`) of the `which` checkpoint of `run_dir`, one dict per seed; with
    `ema` False, of the trained weights rather than their moving average (`train.ema_decay`); a
    conditioned run's at `preference`."""
    exp, state, eval_fn = restore_run(run_dir, which, preference)
    state = state if ema else state.replace(ema=None)
    per_seed, _, _ = evaluate_split(eval_fn, state, eval_data(exp.splits["test"], exp), exp)
    return per_seed


def calibrate_run(run_dir: Path, which: str = "best") -> dict:
    """Fits the `which` checkpoint's temperatures on the validation split, writes them into
    `calibration.json` and returns the record (`calibration.fit_run`).

    Raises:
      ValueError: the run has no classification task.
    """
    exp, state, eval_fn = restore_run(run_dir, which)
    classify = [t for t, task in exp.tasks.items() if task.kind == "classification"]
    if not classify:
        raise ValueError(f"{run_dir} has no classification task to calibrate")
    split = {name: eval_data(exp.splits[name], exp) for name in ("val", "test")}
    logits = {name: evaluate_split(eval_fn, state, part, exp)[2] for name, part in split.items()}
    record = calibration.fit_run(*({t: (logits[name][t], split[name].truth[t]) for t in classify}
                                   for name in ("val", "test")))
    rundir.write_json(run_dir / calibration.CALIBRATION_FILE, record)
    return record


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtljax.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--which", choices=("best", "latest"), default="best")
    parser.add_argument("--seed", type=int, help="index of one seed of a --seeds run (0, 1, ...)")
    parser.add_argument("--calibrate", action="store_true", help="fit the temperatures on validation (calibration.json)")
    parser.add_argument("--no-ema", action="store_true", help="the trained weights, not their moving average")
    parser.add_argument("--preference", metavar="R1,R2,...",
                        help="a preference-conditioned run (pareto.condition) at this ray, one number per task")
    args = parser.parse_args(sweeps.attach_preference(sys.argv[1:] if argv is None else argv))
    if not (args.run_dir / rundir.CONFIG_FILE).is_file():
        print(f"error: {args.run_dir} is not a run directory (no {rundir.CONFIG_FILE})", file=sys.stderr)
        return 2
    try:
        if args.calibrate:
            record = calibrate_run(args.run_dir, args.which)
            for t, m in record["mean"].items():
                print(f"{t:12s} temperature={m['temperature']:.3f} test ECE {100 * m['test_ece_before']:.2f} % "
                      f"-> {100 * m['test_ece_after']:.2f} %")
            return 0
        preference = sweeps.parse_preference(args.preference) if args.preference is not None else None
        per_seed = evaluate_run(args.run_dir, args.which, ema=not args.no_ema, preference=preference)
        if args.seed is not None and not 0 <= args.seed < len(per_seed):
            raise ValueError(f"--seed {args.seed}: the run has seeds 0..{len(per_seed) - 1}")
    except (config.ConfigError, mnist.DataError, checkpoint.CheckpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = per_seed[args.seed] if args.seed is not None else seed_mean(per_seed)
    for t in [k.split("/")[0] for k in results if k.endswith("/loss") and k != "loss"]:
        names = [k.split("/", 1)[1] for k in results if k.startswith(f"{t}/")]
        print(f"{t:12s} " + " ".join(f"{m}={results[f'{t}/{m}']:.4f}" for m in names))
    summary_path = args.run_dir / rundir.SUMMARY_FILE
    if summary_path.exists() and not args.no_ema and preference is None:
        summary = rundir.read_json(summary_path)
        saved = summary["test_seeds"][args.seed] if args.seed is not None and "test_seeds" in summary else summary["test"]
        same = all(math.isclose(results[k], saved[k], rel_tol=1e-6, abs_tol=1e-9) for k in saved)
        print(f"equal to {summary_path}: {'yes' if same else 'NO'}")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
