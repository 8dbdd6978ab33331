"""`python -m mtljax.compare pareto`: whole Pareto fronts on the literature's Multi-MNIST.

Every per-ray method trains one model per preference ray, all rays × seeds in one run (one
compiled program, `pareto.rays`); every one-model method trains one network for every ray
(`pareto.condition`), evaluated afterwards at `eval_rays` evenly spread rays. For each method and
seed the front is its test losses (and errors) at its rays; the page gives the hypervolume of the
test losses (reference (2, 2), COSMOS's), mean and 95 % t-interval over the seeds, how far the
solutions stray from their rays, the wall time, and a figure of the fronts.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from mtljax.compare import cells as cellrun, page
from mtljax.compare.suites import Cell
from mtljax.mtl import pareto
from mtljax.outputs import rundir
from mtljax.outputs.stats import hypervolume, t_interval

FRONT_FILE = "front.json"  # A one-model run's evaluation at the suite's rays, kept in its run directory.
# Where each method puts the losses of ray r: along r ("direct": PBI, ParetoMTL, PMGDA, COSMOS), along
# 1/r, so that r_t·L_t is the same for every task ("inverse": Tchebycheff, STCH, EPO), or nowhere
# in particular (linear scalarization).
AIM = {"static": None, "tchebycheff": "inverse", "stch": "inverse", "epo": "inverse", "pbi": "direct",
       "pmtl": "direct", "pmgda": "direct", "cosmos": "direct", "phn_ls": None, "phn_epo": "inverse", "pml": None}


@dataclasses.dataclass(frozen=True)
class ParetoSuite:
    """The problem, the protocol and the methods of the Pareto benchmark.

    Attributes:
      title: a few words for headings.
      experiment: the experiment file every run starts from.
      tasks: the tasks, in order.
      protocol: `--set` items applied to every run.
      rays: preference rays of a per-ray method's run.
      eval_rays: rays a one-model method is evaluated at.
      per_ray: per-ray methods (`mtl.strategy` with `pareto.rays`): name -> their own `--set` items.
      one_model: one-model methods: name -> (label, their `--set` items).
      reference: the hypervolume's reference point on the test losses.
      about: a paragraph for the page.
      published: the papers' figures, a sentence with its source.
    """

    title: str
    experiment: str
    tasks: tuple[str, ...]
    protocol: tuple[str, ...]
    rays: int
    eval_rays: int
    per_ray: tuple[tuple[str, tuple[str, ...]], ...]
    one_model: tuple[tuple[str, str, tuple[str, ...]], ...]
    reference: tuple[float, ...]
    about: str
    published: str

    def cells(self, name: str, extra: Sequence[str] = (), seeds: int = 5) -> list[Cell]:
        """Every run of the suite (named `name`), with `extra` overrides after the protocol."""
        base = (*self.protocol, *extra, f"seeds={seeds}")
        runs = [Cell(f"ray_{s}", s, "ray", self.experiment,
                     (*base, f"name={name}_ray_{s}", f"pareto.rays={self.rays}", f"mtl.strategy={s}", *own), strategy=s)
                for s, own in self.per_ray]
        runs += [Cell(f"model_{m}", label, "model", self.experiment,
                      (*base, f"name={name}_model_{m}", "pareto.rays=0", *own), strategy=m)
                 for m, label, own in self.one_model]
        return runs


PARETO = ParetoSuite(
    title="Multi-MNIST (36×36): whole Pareto fronts",
    experiment="experiments/pareto_multimnist.py",
    tasks=("left", "right"),
    protocol=("train.epochs=1",),
    rays=5,
    eval_rays=25,
    per_ray=(("static", ()), ("tchebycheff", ()), ("stch", ("mtl.stch.warmup_epochs=0",)), ("pbi", ()), ("epo", ()),
             ("pmtl", ()), ("pmgda", ())),
    one_model=(("cosmos", "COSMOS", ("pareto.condition=input", "mtl.strategy=cosmos")),
               ("phn_ls", "PHN-LS", ("pareto.condition=hyper", "mtl.strategy=static")),
               ("phn_epo", "PHN-EPO", ("pareto.condition=hyper", "mtl.strategy=epo")),
               ("pml", "PML", ("pareto.condition=simplex", "mtl.strategy=static"))),
    reference=(2.0, 2.0),
    about=("Multi-MNIST as the Pareto-MTL papers build it (36×36, two digits; experiments/pareto_multimnist.py: "
           "108,000 training, 12,000 validation, 20,000 test images), LibMOON's Multi-LeNet, Adam 1e-3, batch 256, "
           "shortened to 1 epoch so that every method's seeds and rays fit this 2-core CPU"),
    published=("The papers report hypervolumes of about 2.87–2.95 on Multi-MNIST's test losses with reference "
               "(2, 2) for single-task training, PHN, ParetoMTL and COSMOS (COSMOS, Ruchte & Grabocka 2021, its "
               "Multi-MNIST table), after 100 or more epochs."),
)


@dataclasses.dataclass(frozen=True)
class Front:
    """A method's solutions: `rays`, test `losses` and `errors` (%), each seeds × rays × tasks."""

    label: str
    kind: str
    method: str
    rays: np.ndarray
    losses: np.ndarray
    errors: np.ndarray
    wall_s: float


def _metrics(runs: Sequence[dict], tasks: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    losses = np.asarray([[r[f"{t}/loss"] for t in tasks] for r in runs])
    errors = np.asarray([[100 * (1 - r[f"{t}/accuracy"]) for t in tasks] for r in runs])
    return losses, errors


def ray_front(state: cellrun.CellState, tasks: Sequence[str]) -> Front:
    """A per-ray run's front, from its summary: replica p·S + s is ray p, seed s."""
    summary = state.summary
    rows, n_seeds = summary["sweep"]["rows"], summary["sweep"]["seeds_per_point"]
    rays = np.asarray([[row["values"][f"loss_weights.{t}"] for t in tasks] for row in rows])
    losses, errors = _metrics(summary["test_seeds"], tasks)
    by_seed = lambda a: a.reshape(len(rows), n_seeds, -1).transpose(1, 0, 2)  # noqa: E731
    return Front(state.cell.label, "ray", state.cell.strategy, np.broadcast_to(rays, (n_seeds, *rays.shape)), by_seed(losses),
                 by_seed(errors), state.wall[0])


def model_front(state: cellrun.CellState, tasks: Sequence[str], n_rays: int) -> Front:
    """A one-model run's front: its test metrics at `n_rays` evenly spread rays, computed once from
    its best checkpoint and kept in the run directory (`FRONT_FILE`)."""
    path = state.run_dir / FRONT_FILE
    rays = pareto.uniform_rays(n_rays, len(tasks))
    saved = rundir.read_json(path) if path.exists() else None
    if saved is None or saved["rays"] != rays.tolist():
        saved = {"rays": rays.tolist(), "per_ray": evaluate_at(state.run_dir, rays)}
        rundir.write_json(path, saved)
    per_ray = saved["per_ray"]  # rays × seeds of metric dicts.
    losses, errors = (np.asarray([_metrics(seeds, tasks)[k] for seeds in per_ray]).transpose(1, 0, 2) for k in (0, 1))
    return Front(state.cell.label, "model", state.cell.strategy, np.broadcast_to(rays, (losses.shape[0], *rays.shape)), losses, errors,
                 state.wall[0])


def evaluate_at(run_dir: Path, rays: np.ndarray) -> list[list[dict]]:
    """Every seed's test metrics of a conditioned run at each of `rays` (the run restored once)."""
    import jax  # Training imports only where a run is evaluated.

    from mtljax.evaluate import restore_run
    from mtljax.train import experiment, parallel
    from mtljax.train.epoch import evaluation
    from mtljax.train.evaluation import eval_data, evaluate_split

    exp, state, _ = restore_run(run_dir)
    test, mode = eval_data(exp.splits["test"], exp), experiment.resolve_replicas(exp.cfg)
    out = []
    for ray in rays:
        fn = jax.jit(parallel.over_replicas(evaluation(exp, np.asarray(ray, np.float32)), (0, 0, None, None), mode))
        out.append(evaluate_split(fn, state, test, exp)[0])
    return out


def hypervolumes(front: Front, reference: Sequence[float]) -> list[float]:
    """The hypervolume of each seed's test losses."""
    return [hypervolume(points, reference) for points in front.losses]


def stray(front: Front, aim: str | None) -> float | None:
    """The mean angle (degrees) between each solution's losses and where its method aims them
    (`AIM`: r, or 1/r); None for a method that aims nowhere."""
    if aim is None:
        return None
    target = front.rays if aim == "direct" else 1.0 / front.rays
    cos = np.sum(target * front.losses, -1) / (np.linalg.norm(target, axis=-1) * np.linalg.norm(front.losses, axis=-1))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))).mean())


def table(fronts: Sequence[Front], reference: Sequence[float]) -> str:
    """The results table: hypervolume (mean [95 % interval] over seeds), stray angle, wall time."""
    lines = ["| method | models | rays | hypervolume (test losses) | mean angle from its rays | wall (all seeds) |",
             "|---|---|---|---|---|---|"]
    for f in fronts:
        angle = stray(f, AIM.get(f.method))
        models = "one per ray" if f.kind == "ray" else "one for every ray"
        lines.append(f"| {f.label} | {models} | {f.rays.shape[1]} | {page.interval(t_interval(hypervolumes(f, reference)), 3)} | "
                     f"{'—' if angle is None else f'{angle:.1f}°'} | "
                     f"{f.wall_s / 60:.1f} min |")
    return "\n".join(lines)


def plot(fronts: Sequence[Front], tasks: Sequence[str], path: Path) -> None:
    """Each method's front of the first seed, test losses and errors, side by side."""
    from mtljax.outputs.plots import subplots

    fig, axes = subplots(1, 2, figsize=(11, 4.5))
    for k, (ax, what) in enumerate(zip(axes, ("loss", "error %"))):
        for i, f in enumerate(fronts):
            points = (f.losses if k == 0 else f.errors)[0]
            order = np.argsort(points[:, 0])
            style = "-o" if i < 10 else "--s"  # Ten colours, then dashed lines and squares.
            ax.plot(points[order, 0], points[order, 1], style, ms=3, color=f"C{i % 10}", label=f.label)
        ax.set_xlabel(f"{tasks[0]} test {what}")
        ax.set_ylabel(f"{tasks[1]} test {what}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def paragraph(fronts: Sequence[Front], reference: Sequence[float]) -> str:
    """One sentence per finding for the README: each method's mean hypervolume, the best one."""
    means = {f.label: float(np.mean(hypervolumes(f, reference))) for f in fronts}
    best = max(means, key=means.get)
    listed = ", ".join(f"{label} {value:.3f}" for label, value in means.items())
    return (f"Mean hypervolume of the test losses (reference {tuple(reference)}): {listed}; the largest is "
            f"{best}'s.")


def report(suite: ParetoSuite, name: str, states: Sequence[cellrun.CellState], seeds: int, page_path: Path,
           figure_dir: Path, extra: Sequence[str] = ()) -> str:
    """Writes the suite's section of `page_path` from the runs there are; returns the README's
    paragraph ("" when no run is complete)."""
    fronts = [ray_front(s, suite.tasks) if s.cell.kind == "ray" else model_front(s, suite.tasks, suite.eval_rays)
              for s in states if s.status == "complete"]
    missing = [s.cell.name for s in states if s.status != "complete"]
    parts = [f"### {suite.title} (`{name}`)",
             f"{suite.about}; {seeds} seeds; overrides: `{' '.join(extra) or 'none'}`. Per-ray methods: "
             f"{suite.rays} rays × {seeds} seeds, one compiled program each; one-model methods evaluated at "
             f"{suite.eval_rays} rays. Regenerate: `python -m mtljax.compare pareto`."]
    if fronts:
        figure = figure_dir / name / "fronts.png"
        plot(fronts, suite.tasks, figure)
        parts += [table(fronts, suite.reference), suite.published,
                  f"![fronts]({os.path.relpath(figure, page_path.parent)})"]
    if missing:
        parts.append(f"Not run yet: {', '.join(missing)}.")
    page.write_section(page_path, name, "\n\n".join(parts))
    return paragraph(fronts, suite.reference) if fronts else ""
