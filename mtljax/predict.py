"""`python -m mtljax.predict RUN_DIR IMAGE [IMAGE ...] [--preference R1,R2]`: predict every task of a trained run.

Loads the run's best checkpoint and prints, per image, each task's predicted class and its
calibrated probability. Any PNG/JPEG of any size and colour is prepared as MNIST was made
(`mtljax.data.userimages`). Probabilities are the softmax of the logits divided by the run's
temperature (fitted on its validation split when training ended, `calibration.json`); a
prediction below `--min-confidence` is marked uncertain. `--seeds all` predicts with every seed
of a `--seeds` run: the mean of their calibrated probabilities, or with `--ensemble majority`
their majority vote (ties go to the larger mean probability).

A file that cannot be read as an image (not an image, empty, unreadable, a directory) gets one
line `error: <file>: <reason>` and the other files are still predicted; the exit code is then 2.
A run without a checkpoint is one such line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mtljax import calibration, config, data, models, tasks
from mtljax.data import sources
from mtljax.data.userimages import DEFAULT_STEPS, STEPS, ImageError, load_image, prepare
from mtljax.outputs import rundir
from mtljax.evaluate import with_preference
from mtljax.train import checkpoint, sweeps
from mtljax.train.step import make_eval_step

__all__ = ["ImageError", "load_image", "prepare", "load_model", "load_seeds", "predict", "main"]


def load_seeds(run_dir: Path, which: str = "best", preference: Sequence[float] | None = None) -> tuple[Any, Any, Any]:
    """The run's config (a conditioned run's at `preference`), model and variables (`{"params",
    "batch_stats"}`) of every seed, stacked on a leading seed axis, from its `which` ("best" or
    "latest") checkpoint.

    Raises:
      checkpoint.CheckpointError: no such checkpoint (or a damaged one).
      config.ConfigError: a preference for a run that is not conditioned, or not a ray of its tasks.
    """
    cfg = with_preference(config.load_run_config(run_dir), preference)
    model = models.build_model(cfg["model"], {t: tasks.get(t, cfg).outputs for t in cfg["tasks"]},
                               **sweeps.model_options(cfg))
    ckpts = checkpoint.RunCheckpoints(run_dir)
    try:
        variables = ckpts.load_variables(which)
    finally:
        ckpts.close()
    return cfg, model, {"params": models.model_params(variables["params"]), "batch_stats": variables["batch_stats"]}


def load_model(run_dir: Path, seed: int = 0, which: str = "best") -> tuple[Any, dict, Any]:
    """The run's config, model and variables of seed index `seed` (`load_seeds`, one seed).

    Raises:
      checkpoint.CheckpointError: no such checkpoint (or a damaged one).
      ValueError: no such seed.
    """
    cfg, model, variables = load_seeds(run_dir, which)
    n_seeds = n_seeds_of(variables)
    if not 0 <= seed < n_seeds:
        raise ValueError(f"--seed {seed}: the run has seeds 0..{n_seeds - 1}")
    return cfg, model, jax.tree.map(lambda a: jnp.asarray(a[seed]), variables)


def n_seeds_of(variables: Any) -> int:
    """The length of the leading seed axis of stacked variables."""
    return jax.tree.leaves(variables["params"])[0].shape[0]


_EVAL_STEPS: dict[str, Any] = {}  # repr(model) -> its jitted eval step: compiled once per process.


def seed_outputs(model, variables: Any, seeds: Sequence[int], images: np.ndarray,
                 block: int = 512, preference: np.ndarray | None = None) -> list[dict[str, np.ndarray]]:
    """Each chosen seed's head outputs (task -> N×C) for `images` (N×H×W×C uint8), `block` images
    per call; a conditioned model's at `preference` (`sweeps.eval_preference`)."""
    # Flax modules with dict attributes do not hash; their repr lists every field.
    key = repr(model) + repr(None if preference is None else preference.tolist())
    step = _EVAL_STEPS.setdefault(key, jax.jit(make_eval_step(model, preference)))
    out = []
    for k in seeds:
        one = jax.tree.map(lambda a: jnp.asarray(a[k]), variables)
        parts = [step(one["params"], one["batch_stats"], jnp.asarray(images[i:i + block]))
                 for i in range(0, len(images), block)]
        out.append({t: np.concatenate([np.asarray(p[t]) for p in parts]) for t in parts[0]})
    return out


def predict(cfg, outputs: Sequence[dict[str, np.ndarray]], temps: Sequence[dict[str, float]],
            ensemble: str = "mean", min_confidence: float = 0.0) -> list[dict[str, dict[str, Any]]]:
    """Per image and task, the prediction of one seed's or several seeds' outputs (`seed_outputs`).

    A classification task gives {"class", "label", "probability", "probabilities", "uncertain"}
    (and "votes" with `ensemble` "majority" over several seeds): softmax(logits / T) with each
    seed's temperature `temps[k][task]`, averaged over the seeds. A regression task gives
    {"value", "label"}, the mean over the seeds."""
    n = len(next(iter(outputs[0].values())))
    results: list[dict[str, dict[str, Any]]] = [{} for _ in range(n)]
    for t in cfg["tasks"]:
        task = tasks.get(t, cfg)
        if task.kind != "classification":
            values = np.mean([np.asarray(task.predict(o[t])) for o in outputs], axis=0)
            for i in range(n):
                results[i][t] = {"value": float(values[i]), "label": task.describe(float(values[i]))}
            continue
        probs = np.stack([calibration.softmax(o[t], temp.get(t, 1.0)) for o, temp in zip(outputs, temps)])
        mean = probs.mean(axis=0)
        votes = np.stack([np.bincount(row, minlength=mean.shape[1]) for row in probs.argmax(-1).T])
        for i in range(n):
            k = int(np.argmax(mean[i] + 2 * votes[i])) if ensemble == "majority" else int(np.argmax(mean[i]))
            results[i][t] = {"class": k, "label": task.class_names[k], "probability": float(mean[i, k]),
                             "probabilities": [round(float(p), 6) for p in mean[i]],
                             "uncertain": bool(mean[i, k] < min_confidence)}
            if ensemble == "majority" and len(outputs) > 1:
                results[i][t]["votes"] = f"{int(votes[i, k])}/{len(outputs)}"
    return results


def parse_seeds(text: str, n_seeds: int) -> list[int]:
    """`--seeds`: "all" or comma-separated seed indices of the run."""
    seeds = list(range(n_seeds)) if text == "all" else [int(k) for k in text.split(",") if k.strip()]
    if not seeds or any(not 0 <= k < n_seeds for k in seeds):
        raise ValueError(f"--seeds {text}: the run has seeds 0..{n_seeds - 1}")
    return seeds


def run_temperatures(run_dir: Path, seeds: Sequence[int], calibrated: bool) -> list[dict[str, float]]:
    """Each seed's fitted temperatures; 1.0 (with a note on stderr) for a run fitted none."""
    fitted = [calibration.temperatures(run_dir, k) for k in seeds] if calibrated else [{} for _ in seeds]
    if calibrated and fitted[0] is None:
        print(f"note: {run_dir} has no {calibration.CALIBRATION_FILE}; probabilities are uncalibrated "
              f"(fit them: python -m mtljax.evaluate {run_dir} --calibrate)", file=sys.stderr)
    return [temps or {} for temps in fitted]


def parse_steps(text: str | None, digits: bool = True) -> frozenset[str]:
    """`--prepare`: comma-separated preparation steps (userimages.STEPS), or "as-is"; None: the
    defaults for a run on MNIST (`digits`), else "as-is" (a run on users' own data: images are
    resized whole, as its source gave them)."""
    if text is None:
        return DEFAULT_STEPS if digits else frozenset({"as-is"})
    steps = frozenset(s.strip() for s in text.split(",") if s.strip())
    if steps != {"as-is"} and not steps <= set(STEPS):
        raise ValueError(f"--prepare {text}: steps are {', '.join(STEPS)}, or as-is alone")
    return steps


def prepare_files(paths: Sequence[Path], shape: tuple[int, int, int], steps: frozenset[str] = DEFAULT_STEPS
                  ) -> tuple[list[np.ndarray], list[str], bool]:
    """The readable images prepared for the model, their names, and whether any file failed (each
    failure printed as one `error:` line)."""
    prepared, names, failed = [], [], False
    for path in paths:
        try:
            prepared.append(prepare(load_image(path), shape, steps))
            names.append(str(path))
        except ImageError as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            failed = True
    return prepared, names, failed


def text_line(name: str, result: dict[str, dict[str, Any]]) -> str:
    """One image's predictions as a line: `file: digit 7 (98.1 %) | parity odd (99.0 %)`."""
    parts = []
    for t, r in result.items():
        part = f"{t} {r['label']}"
        if "probability" in r:
            part += f" ({100 * r['probability']:.1f} %" + (f", {r['votes']} votes" if "votes" in r else "") + ")"
            part += " uncertain" if r["uncertain"] else ""
        parts.append(part)
    return f"{name}: {' | '.join(parts)}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtljax.predict", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("images", type=Path, nargs="+")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--seed", type=int, help="seed index of a --seeds run (default 0)")
    parser.add_argument("--seeds", help="'all' or indices (0,2,3): predict with these seeds together")
    parser.add_argument("--ensemble", choices=("mean", "majority"), default="mean",
                        help="how several seeds decide: mean probability or majority vote")
    parser.add_argument("--min-confidence", type=float, default=0.9, metavar="P",
                        help="mark predictions whose probability is below P as uncertain (default 0.9)")
    parser.add_argument("--no-calibration", action="store_true", help="probabilities at temperature 1")
    parser.add_argument("--preference", metavar="R1,R2,...",
                        help="a preference-conditioned run (pareto.condition) at this ray, one number per task")
    parser.add_argument("--prepare", metavar="STEPS", help=f"preparation steps, comma-separated, of "
                        f"{', '.join(STEPS)}, or as-is (default: {','.join(sorted(DEFAULT_STEPS))} for runs on MNIST, as-is for "
                        "runs on other sources)")
    args = parser.parse_args(sweeps.attach_preference(sys.argv[1:] if argv is None else argv))
    if not (args.run_dir / rundir.CONFIG_FILE).is_file():
        print(f"error: {args.run_dir} is not a run directory (no {rundir.CONFIG_FILE})", file=sys.stderr)
        return 2
    try:
        if args.seed is not None and args.seeds is not None:
            raise ValueError("give --seed or --seeds, not both")
        preference = sweeps.parse_preference(args.preference) if args.preference is not None else None
        cfg, model, variables = load_seeds(args.run_dir, preference=preference)
        steps = parse_steps(args.prepare, sources.parse(cfg["data"]["source"])[0] == "mnist")
        seeds = parse_seeds(args.seeds if args.seeds is not None else str(args.seed or 0), n_seeds_of(variables))
    except (checkpoint.CheckpointError, config.ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    temps = run_temperatures(args.run_dir, seeds, not args.no_calibration)
    prepared, names, failed = prepare_files(args.images, data.image_shape(cfg["data"]), steps)
    results = []
    if prepared:
        outputs = seed_outputs(model, variables, seeds, np.stack(prepared), preference=sweeps.eval_preference(cfg))
        results = predict(cfg, outputs, temps, args.ensemble, args.min_confidence)
    if args.json:
        print(json.dumps({"run": str(args.run_dir), "seeds": seeds, "calibrated": bool(temps[0]),
                          "predictions": [{"file": n, **r} for n, r in zip(names, results)]}, indent=1))
    else:
        for name, result in zip(names, results):
            print(text_line(name, result))
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
