"""Hyper-parameter sweeps as one vmapped program: values × seeds replicas, one compile.

A sweep is the config's `sweep` section, `{dotted key: [values]}` (or `--sweep key=v1,v2,...`);
several keys make a grid. Replica r = point p × seed s (r = p·seeds + s), and every point uses the
same seeds, so points differ only in their values (common random numbers).

Only values that can be traced arguments of the train step are sweepable: they change numbers, not
shapes or program structure (SWEEPABLE). Each replica carries its values in `TrainState.hyper`, and
the step rebuilds model and optimizer from them inside the trace (`experiment.configure`). Everything
else (widths, tasks, batch size, epochs, schedule kind, ...) is refused: run one job per value.

How each key acts (all exact, not approximations):
  loss_weights.<task>   the task's weight in the summed loss;
  optimizer.lr          multiplies every update by lr / lr₀ after the optax chain, which is exactly
                        a chain built with lr for adam, adamw and sgd (each ends by scaling with the
                        learning rate); schedule floors (min_lr) scale with it;
  optimizer.weight_decay, model.dropout, model.head_dropout, augment.shift|rotate|scale
                        passed as traced values to the optimizer, model and augmentation.
"""

from __future__ import annotations

import itertools
from typing import Mapping, Sequence

import numpy as np

from mtljax import data
from mtljax.mtl import pareto
from mtljax.registry import Option


SWEEPABLE = ("loss_weights.<task>", "optimizer.lr", "optimizer.weight_decay", "model.dropout",
             "model.head_dropout", "augment.shift", "augment.rotate", "augment.scale")


# Config `pareto.*`: preference rays as replicas (docs/pareto.md).
PARETO_OPTIONS = {
    "rays": Option(0, "> 0: one replica per preference ray, this many rays evenly spread over the tasks' simplex "
                   "(mtljax/mtl/pareto.py uniform_rays), each ray the replica's loss weights", minimum=0),
    "condition": Option("none", "one model for every ray: each step draws a ray, the loss weights, which the network "
                        "sees as T constant input channels ('input': COSMOS) or which makes its weights ('hyper': a "
                        "Pareto HyperNetwork; 'simplex': Pareto Manifold Learning); 'none': not conditioned",
                        choices=("none", "input", "hyper", "simplex")),
    "hidden": Option(100, "the hypernetwork's width (condition 'hyper')", positive=True),
    "alpha": Option(1.2, "Dirichlet concentration of the rays a conditioned run draws (1: uniform on the simplex)",
                    positive=True),
    "preference": Option(None, "the ray a conditioned run is validated, tested and predicts at (T numbers >= 0, "
                         "not all 0); None: the centre, 1/T each", nullable=list),
}


# Methods whose linear program is solved by enumerating vertices (mtljax/mtl/solvers.py lp_vertices): most tasks.
VERTEX_METHODS = {"epo": 6, "pmgda": 6}


def preference_problem(preference, n_tasks: int) -> str | None:
    """What is wrong with a preference ray for `n_tasks` tasks, in a line; None if nothing."""
    try:
        values = [float(v) for v in preference]
    except (TypeError, ValueError):
        return f"expected {n_tasks} numbers, got {preference!r}"
    if len(values) != n_tasks:
        return f"expected {n_tasks} numbers (one per task), got {len(values)}"
    if any(not np.isfinite(v) or v < 0 for v in values):
        return f"expected numbers >= 0, got {preference!r}"
    if not any(values):
        return "a ray needs a number > 0; all are 0"
    return None


def model_options(cfg: Mapping) -> dict:
    """`models.build_model`'s preference options of a config (`pareto.condition`, `pareto.hidden`)."""
    return {"condition": cfg["pareto"]["condition"], "hidden": cfg["pareto"]["hidden"]}


def input_shape(cfg: Mapping) -> tuple[int, ...]:
    """The shape (H, W, C) of one input of the model: the images', with T ray channels more when
    the run is preference-conditioned (`pareto.condition`)."""
    h, w, c = data.image_shape(cfg["data"])
    return (h, w, c + len(cfg["tasks"])) if cfg["pareto"]["condition"] != "none" else (h, w, c)


def parse_preference(text: str) -> list[float]:
    """`--preference 0.3,0.7` -> [0.3, 0.7] (checked against the run's tasks by its config).

    Raises:
      ValueError: not numbers separated by commas.
    """
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--preference {text!r}: expected numbers separated by commas, e.g. 0.3,0.7") from None


def attach_preference(argv: Sequence[str]) -> list[str]:
    """`--preference -1,2` as `--preference=-1,2`, so that argparse reads a value starting with
    '-' as the value (and the ray's check, not argparse's usage text, reports it)."""
    out, args = [], list(argv)
    for i, arg in enumerate(args):
        if i > 0 and args[i - 1] == "--preference" and out and out[-1] == "--preference":
            out[-1] = f"--preference={arg}"
        else:
            out.append(arg)
    return out


def eval_preference(cfg: Mapping) -> np.ndarray | None:
    """The ray a conditioned run evaluates at, on the simplex (float32, T); None if not conditioned."""
    if cfg["pareto"]["condition"] == "none":
        return None
    ray = cfg["pareto"]["preference"] or [1.0] * len(cfg["tasks"])
    return (np.asarray(ray, np.float64) / np.sum(ray)).astype(np.float32)


def is_sweepable(key: str, task_names: Sequence[str]) -> bool:
    """Whether `key` may be swept in a config with tasks `task_names`."""
    section, _, name = key.partition(".")
    if section == "loss_weights":
        return name in task_names
    return key in SWEEPABLE


def sweep_problem(cfg: Mapping, options: Mapping) -> str | None:
    """What is wrong with a config's `sweep` (`options`: the config's schema), in a line; None if nothing."""
    sweep = cfg["sweep"]
    if not isinstance(sweep, Mapping):
        return f"sweep: expected a dict key -> list of values, got {sweep!r}"
    for key, values in sweep.items():
        if not is_sweepable(key, cfg["tasks"]):
            return (f"sweep.{key}: cannot be swept in one compiled program (it is not a traced value, or names no "
                    f"configured task); sweepable: {', '.join(SWEEPABLE)}; run one job per value with --set instead")
        if not isinstance(values, (list, tuple)) or not values:
            return f"sweep.{key}: expected a non-empty list of numbers, got {values!r}"
        section, name = key.split(".", 1)
        for value in values:
            if section == "loss_weights":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    return f"sweep.{key}: expected numbers >= 0, got {value!r}"
            elif name not in options[section]:
                return f"sweep.{key}: not an option of this config's {section} ({cfg[section].get('name')})"
            elif options[section][name].problem(value):
                return f"sweep.{key}: {options[section][name].problem(value)}"
    return None


def parse_sweep(text: str) -> tuple[str, list[float]]:
    """`key=v1,v2,...` -> (key, [v1, v2, ...]).

    Raises:
      ValueError: not of that form, or a value is not a number.
    """
    key, sep, raw = text.partition("=")
    try:
        values = [float(v) for v in raw.split(",")] if sep and key and raw else None
    except ValueError:
        values = None
    if values is None:
        raise ValueError(f"--sweep {text!r}: expected key=v1,v2,..., e.g. loss_weights.parity=0.25,0.5,1,2,4")
    return key, values


def grid(sweep: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """The sweep's points, `{key: value}`, in row-major order of the keys as given; [{}] for none."""
    keys = list(sweep)
    return [dict(zip(keys, values)) for values in itertools.product(*(sweep[k] for k in keys))]


def points(cfg: Mapping) -> list[dict[str, float]]:
    """A config's replicas' points: the sweep's grid, and with `pareto.rays` every grid point
    once per ray (the ray's components as `loss_weights.<task>`, rays fastest)."""
    grid_points, n = grid(cfg["sweep"]), cfg["pareto"]["rays"]
    if not n:
        return grid_points
    rays = pareto.uniform_rays(n, len(cfg["tasks"]))
    return [{**p, **{f"loss_weights.{t}": float(r[k]) for k, t in enumerate(cfg["tasks"])}}
            for p in grid_points for r in rays]


def pareto_problem(cfg: Mapping) -> str | None:
    """What is wrong with a config's `pareto` section, in a line ("pareto.<key>: ..."); None if nothing."""
    section, n_tasks = cfg["pareto"], len(cfg["tasks"])
    if cfg["mtl"]["strategy"] in VERTEX_METHODS and n_tasks > VERTEX_METHODS[cfg["mtl"]["strategy"]]:
        return (f"mtl.strategy: {cfg['mtl']['strategy']!r} solves its linear program exactly over its vertices, for "
                f"at most {VERTEX_METHODS[cfg['mtl']['strategy']]} tasks; this config has {n_tasks}")
    if section["preference"] is not None:
        if section["condition"] == "none":
            return "pareto.preference: this run is not preference-conditioned (pareto.condition 'none')"
        problem = preference_problem(section["preference"], n_tasks)
        if problem:
            return f"pareto.preference: {problem}"
    if section["condition"] in ("hyper", "simplex") and cfg["model"].get("batchnorm"):
        return (f"pareto.condition: {section['condition']!r} makes the weights of a network without batch "
                "statistics; set model.batchnorm false")
    if section["condition"] != "none" and section["rays"]:
        return "pareto.rays: a conditioned run is one model for every ray; rays are for one model per ray"
    problem = _rays_problem(cfg)
    return f"pareto.rays: {problem}" if problem else None


def _rays_problem(cfg: Mapping) -> str | None:
    n = cfg["pareto"]["rays"]
    if not n:
        return None
    if any(k.startswith("loss_weights.") for k in cfg["sweep"]):
        return "the rays are the replicas' loss weights: they cannot go with a sweep of loss_weights"
    try:
        pareto.uniform_rays(n, len(cfg["tasks"]))
    except ValueError as exc:
        return str(exc)
    return None


def keys(cfg: Mapping) -> list[str]:
    """The keys whose values differ between a config's points (`points`)."""
    return [*cfg["sweep"], *([f"loss_weights.{t}" for t in cfg["tasks"]] if cfg["pareto"]["rays"] else [])]


def is_swept(cfg: Mapping) -> bool:
    """Whether a config's replicas are several points (a sweep, or preference rays)."""
    return bool(cfg["sweep"]) or cfg["pareto"]["rays"] > 0


def replica_values(points: Sequence[Mapping[str, float]], n_seeds: int) -> dict[str, np.ndarray]:
    """Each swept key's value per replica (points × seeds, seed fastest), as float32 arrays."""
    keys = list(points[0])
    return {key: np.repeat(np.asarray([p[key] for p in points], np.float32), n_seeds) for key in keys}
