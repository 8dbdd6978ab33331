"""The benchmark's suites: which runs (cells) each one holds, and the one protocol they share.

A cell is one normal run of an experiment file with `--set` overrides and `--seeds N`: every
method of a suite trains the same network with the same recipe, seeds 0..N-1 (paired across cells:
seed i gives every cell the same initialisation of the shared network and the same data order).
Kinds of cell:
  method  a strategy (hard sharing), or an architecture with a strategy;
  single  one task alone (the single-task baseline of Δm);
  front   static loss weights swept in one compiled program (the tuned scalarization front).
A cell the config refuses (say, a representation-gradient method on an architecture whose tasks
read their own features) is kept with the reason, and shown as not applicable.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from mtljax import config
from mtljax.models import ARCHITECTURES
from mtljax.mtl.strategies import STRATEGIES
from mtljax.registry import Registry


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of a suite.

    Attributes:
      name: the cell's name within its suite (the run is named `<suite>_<name>`).
      label: the row's name on the page ("upgrad", "mtan + uw", "single-task left").
      kind: "method", "single" or "front".
      experiment: the experiment file.
      overrides: `--set` items (the suite's protocol, then the cell's own).
      strategy: the MTL strategy ("" for single-task runs).
      architecture: the architecture.
      task: the task of a single-task cell.
    """

    name: str
    label: str
    kind: str
    experiment: str
    overrides: tuple[str, ...]
    strategy: str = ""
    architecture: str = "hard"
    task: str = ""

    @property
    def group(self) -> str:
        """The part of the suite it belongs to, for `--only`: "baselines" (single-task runs and
        the front), "strategies" (hard sharing) or "architectures"."""
        if self.kind != "method":
            return "baselines"
        return "strategies" if self.architecture == "hard" else "architectures"

    def config(self) -> dict:
        """The validated config of this run (raises config.ConfigError where it is refused)."""
        return config.thaw(config.load_stages(self.experiment, list(self.overrides))[0])


@dataclasses.dataclass(frozen=True)
class Suite:
    """A benchmark problem: an experiment file, its tasks and the shortened recipe every cell uses.

    Attributes:
      title: a few words for headings.
      experiment: the experiment file every cell starts from.
      tasks: the tasks, in order.
      protocol: `--set` items applied to every cell (epochs, schedule, extra tasks).
      about: one paragraph for the page: the problem and the recipe.
      architectures: soft-sharing architectures to run with `architecture_methods`.
      architecture_methods: strategies for the architectures (equal weighting, a loss weighting,
        an aggregator, the cheapest representation-gradient method).
      front_values: the swept loss weights of every task but the first (whose weight stays 1):
        one key for two tasks, a grid of two keys for three.
      error_reference: the hypervolume's reference point on the test errors, per task (error
        rate in % for classification, mean absolute error for regression); on the test losses it is
        2 per task, COSMOS's choice for MultiMNIST (Ruchte & Grabocka 2021).
      published: rows of published figures to show beside this suite's (label -> task -> value).
    """

    title: str
    experiment: str
    tasks: tuple[str, ...]
    protocol: tuple[str, ...]
    about: str
    architectures: tuple[str, ...] = ()
    architecture_methods: tuple[str, ...] = ("equal", "uw", "upgrad", "mgda_ub")
    front_values: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    error_reference: tuple[float, ...] = (10.0, 10.0)
    published: tuple[tuple[str, dict], ...] = ()
    published_note: str = ""

    LOSS_REFERENCE = 2.0

    def references(self) -> dict[str, dict[str, float]]:
        """The hypervolume's reference point per objective ("loss", "error") and task."""
        return {"loss": {t: self.LOSS_REFERENCE for t in self.tasks},
                "error": dict(zip(self.tasks, self.error_reference, strict=True))}

    def cells(self, name: str, extra: Sequence[str] = (), seeds: int = 5) -> list[Cell]:
        """Every cell of this suite (named `name`), with `extra` overrides after the protocol."""
        base = (*self.protocol, *extra, f"seeds={seeds}")

        def cell(run: str, label: str, kind: str, *own: str, **fields) -> Cell:
            return Cell(run, label, kind, self.experiment, (*base, f"name={name}_{run}", *own), **fields)

        cells = [cell(f"single_{t}", f"single-task {t}", "single", f"tasks={[t]!r}", "mtl.strategy=static", task=t)
                 for t in self.tasks]
        sweep = [f"sweep.loss_weights.{t}={list(self.front_values)!r}" for t in self.tasks[1:]]
        cells.append(cell("front", "static loss weights (front)", "front", "mtl.strategy=static", *sweep,
                          strategy="static"))
        cells += [cell(s, s, "method", f"mtl.strategy={s}", *method_overrides(s, self.tasks), strategy=s)
                  for s in STRATEGIES.names() if runs_on(s, self.tasks)]
        cells += [cell(f"{a}_{s}", f"{a} + {s}", "method", f"model.architecture={a}", f"mtl.strategy={s}",
                       strategy=s, architecture=a)
                  for a in self.architectures for s in self.architecture_methods]
        return cells


def suite_options(name: str, tasks: Sequence[str]) -> dict:
    """The options of method `name` a suite sets: PCD's primary task is the suite's first."""
    return {"primary": tasks[0]} if "primary" in STRATEGIES.options(name) else {}


def method_overrides(name: str, tasks: Sequence[str]) -> tuple[str, ...]:
    """`suite_options` as --set overrides."""
    return tuple(f"mtl.{name}.{k}={v!r}" for k, v in suite_options(name, tasks).items())


def runs_on(name: str, tasks: Sequence[str]) -> bool:
    """Whether method `name` is defined for these tasks (Krum needs three rows at least,
    TrimmedMean 2·trim_number + 1): a suite leaves out the methods that are not."""
    options = {**{k: o.default for k, o in STRATEGIES.options(name).items()}, **suite_options(name, tasks)}
    return STRATEGIES[name].problem(options, tasks) is None


SUITES = Registry("benchmark suite")

_MULTIMNIST_ABOUT = (
    "MultiMNIST (left and right digit; Sener & Koltun 2018's construction, "
    "experiments/multimnist_hard.py): the 3-conv CNN without BatchNorm or augmentation, Adam 1e-3, "
    "batch 64, shortened to 3 epochs with the learning rate ×0.1 after epoch 2 (the experiment "
    "file's own recipe is 6 epochs) so that every method and architecture fits this CPU")

SUITES.register("multimnist", Suite(
    title="MultiMNIST: left and right digit",
    experiment="experiments/multimnist_hard.py",
    tasks=("left", "right"),
    protocol=("train.epochs=3", "schedule.step_epochs=2"),
    about=_MULTIMNIST_ABOUT + ".",
    architectures=tuple(a for a in ARCHITECTURES.names() if a != "hard"),
    published=(("single-task", {"left": 97.23, "right": 95.90}), ("uniform scaling", {"left": 96.46, "right": 94.99}),
               ("MGDA-UB", {"left": 97.26, "right": 95.90})),
    published_note=("Sener & Koltun (2018), Table 2, test accuracy %. Their MultiMNIST is their own "
                    "draw of digit pairs (the geometry here follows their loader, experiments/multimnist.py), "
                    "and their network (a LeNet variant) and training recipe differ from this suite's: "
                    "these figures show the scale, not a target."),
))

SUITES.register("threshold", Suite(
    title="MNIST: digit, parity and threshold",
    experiment="experiments/threshold_hard.py",
    tasks=("digit", "parity", "threshold"),
    protocol=("train.epochs=3", "schedule.step_epochs=2"),
    about=("MNIST with three tasks (digit 0–9, parity, threshold < 5) on one shared 3-conv trunk "
           "(experiments/threshold_hard.py): Adam 1e-3, batch 64, shortened to 3 epochs with the "
           "learning rate ×0.1 after epoch 2 (the file's recipe is 5 epochs)."),
    front_values=(0.25, 1.0, 4.0),
    error_reference=(10.0, 10.0, 10.0),
))

SUITES.register("mixed", Suite(
    title="MultiMNIST: two digits and their sum (regression)",
    experiment="experiments/multimnist_hard.py",
    tasks=("left", "right", "sum"),
    protocol=("tasks=['left', 'right', 'sum']", "train.epochs=3", "schedule.step_epochs=2"),
    about=(_MULTIMNIST_ABOUT + "; beside the two classification heads a regression head, the sum "
           "of the two digits (0–18, Huber loss, scored by its mean absolute error): losses of "
           "different scales, where weighting methods should matter most."),
    front_values=(0.25, 1.0, 4.0),
    error_reference=(10.0, 10.0, 2.0),
))
