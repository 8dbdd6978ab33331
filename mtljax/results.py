"""`python -m mtljax.results [--root checkpoints] [--update FILE.md [--section NAME]] [--canonical]`: results tables.

One row per experiment: its newest finished run's headline test metric per task (accuracy, or the
error of a regression task), beside the numbers its source project reported (the `REFERENCE` dict
of the experiment file), and the run's timing; `--canonical` keeps the experiments of
`experiments/` itself (not `experiments/ablations/`, nor the `<problem>_<architecture>` ones). With `--update`, the table replaces the text
between the file's results markers, and the other tables made from run directories are
regenerated too where the file has their markers: the strategy comparison (`<root>/strategies/`)
the newest sweep (`--sweep RUN_DIR` picks another) and the architectures beside hard sharing
(`<problem>_<architecture>` experiments).
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path
from typing import Sequence

from mtljax.outputs import rundir
from mtljax.outputs.summary import format_metric, headlines, markdown_table



def experiment_file(experiments: Path, name: str) -> Path | None:
    """The experiment file (under `experiments/` or `experiments/ablations/`) that defines run name
    `name`, as its file name or as a stage's name."""
    files = sorted(experiments.glob("*.py")) + sorted(experiments.glob("ablations/*.py"))
    for path in files:
        if path.stem == name:
            return path
    for path in files:
        if "STAGES" in path.read_text():
            if any(stage.get("name") == name for stage in runpy.run_path(str(path)).get("STAGES", [])):
                return path
    return None


def _reference(path: Path | None) -> dict:
    """The REFERENCE dict of an experiment file ({} for none)."""
    return dict(runpy.run_path(str(path)).get("REFERENCE", {})) if path else {}


def _task_cells(summary: dict, reference: dict) -> tuple[str, str]:
    """'task headline (reference) [single-task]' and the secondary metrics (macro precision/recall,
    or RMSE), per task. Accuracies are in %."""
    headline, secondary = [], []
    for task, metric in headlines(summary).items():
        key = f"{task}/{metric}"
        extras = [f"ref {reference[task]:.2f}"] if task in reference else []
        single = summary.get("single_task", {}).get(task, {}).get(key)
        extras += [f"single-task {format_metric(metric, single)}"] if single is not None else []
        stats = summary.get("test_stats", {}).get(key)
        spread = f" ± {format_metric(metric, stats['std'])} ({len(summary['seeds'])} seeds)" if stats else ""
        vote = summary.get("test_vote", {}).get(key)
        extras += [f"their majority vote {100 * vote:.2f}"] if vote is not None else []
        unit = "" if metric == "accuracy" else f" {metric}"
        headline.append(f"{task} {format_metric(metric, summary['test'][key])}{spread}{unit}"
                        + (f" ({'; '.join(extras)})" if extras else ""))
        test = summary["test"]
        secondary.append(f"{task} {100 * test[f'{task}/precision']:.2f}/{100 * test[f'{task}/recall']:.2f}"
                         if f"{task}/precision" in test else f"{task} rmse {test.get(f'{task}/rmse', float('nan')):.3f}")
    return "<br>".join(headline), "<br>".join(secondary)


def results_table(root: Path, experiments: Path, canonical: bool = False) -> str:
    """A Markdown table of the newest finished run of every experiment under `root` (`canonical`:
    only those whose file is directly in `experiments`)."""
    rows = ["| experiment | run | epochs | test accuracy % or error (reference) | macro precision/recall % or RMSE | wall time | s/epoch |",
            "|---|---|---|---|---|---|---|"]
    for exp_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        # Sweeps are tables of their own (--sweep): their summary mixes many configurations.
        finished = [p for p in sorted(exp_dir.glob(f"*/{rundir.SUMMARY_FILE}")) if "sweep" not in rundir.read_json(p)]
        if not finished:
            continue
        path = experiment_file(experiments, exp_dir.name)
        if canonical and (path is None or path.parent != experiments or _architecture_run(exp_dir.name)):
            continue
        summary = rundir.read_json(finished[-1])
        accuracy, pr = _task_cells(summary, _reference(path))
        rows.append(f"| {exp_dir.name} | {finished[-1].parent.name} | {summary['epochs_run']} | {accuracy} | {pr} | "
                    f"{summary['wall_time_s'] / 60:.1f} min | {summary['mean_epoch_time_s']:.1f} |")
    return "\n".join(rows)


def _architecture_run(name: str) -> bool:
    """Whether `name` is a `<problem>_<architecture>` experiment (the architecture table has them)."""
    from mtljax import models  # noqa: PLC0415

    return any(name.endswith(f"_{arch}") for arch in models.ARCHITECTURES)


def architecture_table(root: Path, problems: Sequence[str] = ("multimnist", "threshold")) -> str:
    """Each architecture beside hard sharing on each problem: the newest finished run of every
    `<problem>_<architecture>` experiment under `root`, with the model's parameter count (one
    seed's) and its mean epoch time relative to hard sharing's."""
    from mtljax import config, models, tasks  # noqa: PLC0415 - only this table builds models.
    from mtljax.train import sweeps  # noqa: PLC0415

    rows = ["| problem | architecture | parameters | test (mean ± std of seeds) | s/epoch | vs hard | wall time |",
            "|---|---|---|---|---|---|---|"]
    for problem in problems:
        hard_epoch = None
        for arch in models.ARCHITECTURES:
            finished = sorted((root / f"{problem}_{arch}").glob(f"*/{rundir.SUMMARY_FILE}"))
            if not finished:
                continue
            summary, cfg = rundir.read_json(finished[-1]), config.load_run_config(finished[-1].parent)
            model = models.build_model(cfg["model"], {t: tasks.get(t, cfg).outputs for t in cfg["tasks"]},
                                       **sweeps.model_options(cfg))
            count = models.param_count(model, sweeps.input_shape(cfg))
            epoch = summary["mean_epoch_time_s"]
            hard_epoch = epoch if arch == "hard" else hard_epoch
            ratio = f"{epoch / hard_epoch:.2f}x" if hard_epoch else "n/a"
            cells = _task_cells(summary, {})[0].replace(f" ({len(summary['seeds'])} seeds)", "")
            rows.append(f"| {problem} | {arch} | {count:,} | {cells} | {epoch:.1f} | {ratio} | "
                        f"{summary['wall_time_s'] / 60:.1f} min |")
    return "\n".join(rows)


def update_readme(readme: Path, table: str, section: str = "results") -> None:
    """Replaces the text between `<!-- {section}:start -->` and `<!-- {section}:end -->` with `table`."""
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    text = readme.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{readme} has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{table}\n{end}{tail}")


def has_markers(path: Path, section: str) -> bool:
    """Whether `path` has the start marker of `section`."""
    return f"<!-- {section}:start -->" in path.read_text()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtljax.results", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("checkpoints"))
    parser.add_argument("--experiments", type=Path, default=Path("experiments"))
    parser.add_argument("--update", type=Path, help="Markdown file to rewrite between its results markers")
    parser.add_argument("--section", default="results", help="name of the markers to rewrite")
    parser.add_argument("--canonical", action="store_true", help="only the experiments of experiments/ itself")
    parser.add_argument("--sweep", type=Path, metavar="RUN_DIR",
                        help="instead: the table of this sweep run (its rows, mean ± std), for the sweep markers")
    args = parser.parse_args(argv)
    if args.sweep:
        return _sweep_main(args.sweep, args.update)
    if not args.root.is_dir():
        print(f"error: no run directory root {args.root}", file=sys.stderr)
        return 2
    if args.section == "architectures":
        table = architecture_table(args.root)
    else:
        table = results_table(args.root, args.experiments, args.canonical)
    print(table)
    if args.update:
        try:
            update_readme(args.update, table, section=args.section)
            if args.section == "results" and not args.canonical:  # The other run-directory tables.
                if has_markers(args.update, "architectures"):
                    update_readme(args.update, architecture_table(args.root), "architectures")
                if (args.root / "strategies").is_dir() and has_markers(args.update, "strategies"):
                    update_readme(args.update, results_table(args.root / "strategies", args.experiments), "strategies")
                sweeps_done = sorted((p.parent for p in args.root.glob(f"*/*/{rundir.SUMMARY_FILE}")
                                      if "sweep" in rundir.read_json(p)), key=lambda d: d.name)
                if sweeps_done and has_markers(args.update, "sweep"):
                    return _sweep_main(sweeps_done[-1], args.update)
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return 0


def _sweep_main(run_dir: Path, readme: Path | None) -> int:
    summary_path = run_dir / rundir.SUMMARY_FILE
    summary = rundir.read_json(summary_path) if summary_path.is_file() else {}
    if "sweep" not in summary:
        print(f"error: {run_dir} has no finished sweep (no 'sweep' in {summary_path})", file=sys.stderr)
        return 2
    plots = sorted(p.name for p in run_dir.glob("pareto_*.png"))
    table = (f"`{run_dir}`, sweep of {', '.join(summary['sweep']['keys'])}: test accuracy "
             f"({summary['wall_time_s'] / 60:.1f} min for all of it)\n\n{markdown_table(summary)}"
             + (f" Pareto plot(s): {', '.join(plots)} in the run directory." if plots else ""))
    print(table)
    if readme:
        try:
            update_readme(readme, table, section="sweep")
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
