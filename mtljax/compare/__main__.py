"""`python -m mtljax.compare SUITE [--only NAME ...] [--seeds 5] [--list] [--report]`.

Runs a benchmark suite (multimnist, threshold, mixed: mtljax/compare/suites.py), each cell a
normal run directory under `--root`, resumed or reused when it exists, then writes the suite's
section of the results page (`--page`, docs/results.md) and its front figures (`--figures`).
`--only` runs the cells whose names match (shell patterns: `'single_*'`, `upgrad`, `'mtan_*'`,
`front`) or a part of the suite (`baselines`: single-task runs and the front; `strategies`: every
strategy with hard sharing; `architectures`); the page always shows the whole suite, missing runs as missing. `--report` only writes
the page; `--list` prints the cells and their state. The suite `pareto` (mtljax/compare/pareto.py)
traces whole Pareto fronts and writes its section of docs/pareto.md.
"""

from __future__ import annotations

import argparse
import fnmatch
import itertools
import os
import sys
from pathlib import Path
from typing import Sequence


from mtljax import config
from mtljax.compare import analysis, cells as cellrun, figures, page, pareto
from mtljax.compare.suites import SUITES, Suite
from mtljax.tasks import TASKS


def _kinds(tasks: Sequence[str]) -> dict[str, dict]:
    return {t: {"headline": TASKS[t].headline, "higher_is_better": TASKS[t].higher_is_better} for t in tasks}


def _single_points(states: Sequence[cellrun.CellState]) -> dict[str, dict[str, float]] | None:
    """objective -> task -> the single-task runs' mean test loss and error (None if one is missing)."""
    singles = [s for s in states if s.cell.kind == "single"]
    if any(s.status != "complete" for s in singles):
        return None
    points = [analysis.mean_points(s.summary, [s.cell.task]) for s in singles]
    return {objective: {t: v for p in points for t, v in p[objective].items()} for objective in ("loss", "error")}


def front_section(name: str, suite: Suite, states, rows, found, page_path: Path, figure_dir: Path) -> str:
    """The front's table (`found`: analysis.fronts), figures and how they were made (or why they
    are missing)."""
    front = next(s for s in states if s.cell.kind == "front")
    values = ", ".join(f"{v:g}" for v in suite.front_values)
    how = (f"Static loss weights, {suite.tasks[0]}'s fixed at 1 and "
           + " × ".join(suite.tasks[1:]) + f" each over {{{values}}} "
           f"({len(suite.front_values) ** (len(suite.tasks) - 1)} points × the seeds, one compiled program: "
           f"`{name}_front`). A method is beyond the front when no swept point is at least as good on every task; "
           f"hypervolumes use the stated reference point (test losses: 2 per task, COSMOS's choice).")
    if front.status != "complete":
        return f"#### The tuned scalarization front\n\n{how}\n\nThe sweep is {front.status}."
    kinds = _kinds(suite.tasks)
    links = []
    for pair in itertools.combinations(suite.tasks, 2):
        path = figure_dir / name / f"pareto_{pair[0]}_{pair[1]}.png"
        figures.plot_pair([f for f in found if f.tasks == pair], rows, _single_points(states), kinds, path)
        links.append(f"![{pair[0]} against {pair[1]}]({os.path.relpath(path, page_path.parent)})")
    floor = page.noise_floor(found, rows)
    return ("#### The tuned scalarization front\n\n" + how + (" " + floor if floor else "") + "\n\n"
            + page.front_table(found) + "\n\n" + "\n".join(links))


def report(suite: Suite, name: str, states, seeds: int, page_path: Path, figure_dir: Path,
           extra: Sequence[str] = ()) -> str:
    """Writes the suite's section of the page from the runs' states; returns its paragraph."""
    kinds = _kinds(suite.tasks)
    rows = analysis.method_rows(states, suite.tasks)
    front = next(s for s in states if s.cell.kind == "front")
    found = analysis.fronts(front, rows, suite.tasks, suite.references()) if front.status == "complete" else []
    parts = [f"### {suite.title} (`{name}`)", page.suite_header(suite, states, seeds, extra), page.paragraph(rows, found)]
    parts += [f"Ranked by Δm (% against the single-task runs, mean of the seeds; "
              f"{page.BETTER}/{page.WORSE}: the paired 95 % interval lies wholly on the better/worse side of 0; "
              "step time: the run's mean epoch time over equal weighting's, measured in different windows of this "
              "VM, whose speed drifts up to 2x (side-by-side step costs: docs/strategies.md)"
              + page.drift_note(rows) + "; wall: the whole run of all seeds).",
              page.ranked_table(rows, suite.tasks, kinds), page.refused_note(states),
              "<details><summary>Per task: mean ± std [95 % t-interval] over seeds</summary>\n\n"
              + page.task_table(rows, suite.tasks, kinds) + "\n\n</details>"]
    parts.append(front_section(name, suite, states, rows, found, page_path, figure_dir))
    if suite.published:
        singles = analysis.baselines(states)
        parts.append("#### Published figures\n\n" + page.published_table(suite, rows, singles))
    page.write_section(page_path, name, "\n\n".join(p for p in parts if p))
    return parts[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mtljax.compare", description=__doc__.splitlines()[0])
    parser.add_argument("suite", help=f"one of: {', '.join(SUITES.names())}, pareto (docs/pareto.md)")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only these cells (shell patterns) or parts: baselines, strategies, architectures")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per run (default 5)")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="overrides for every cell, after the suite's protocol (stated on the page)")
    parser.add_argument("--root", default="checkpoints/benchmark", help="where the suites' runs go")
    parser.add_argument("--page", default="docs/results.md",
                        help="the results page to update (the pareto suite: docs/pareto.md)")
    parser.add_argument("--figures", default="docs/benchmark", help="where the front figures go")
    parser.add_argument("--readme", default="README.md",
                        help="also put the suite's paragraph between this file's benchmark markers, if it has them")
    parser.add_argument("--list", action="store_true", help="print the cells and their state; run nothing")
    parser.add_argument("--report", action="store_true", help="only write the page from the runs there are")
    return parser


def _selected(cells, patterns) -> list:
    """The cells whose name or group (baselines, strategies, architectures) matches a pattern."""
    if not patterns:
        return list(cells)
    match = lambda c, p: fnmatch.fnmatchcase(c.name, p) or c.group == p  # noqa: E731
    unknown = [p for p in patterns if not any(match(c, p) for c in cells)]
    if unknown:
        raise ValueError(f"--only {unknown[0]!r}: no cell of this suite matches; groups: baselines, strategies, "
                         f"architectures; cells: {', '.join(c.name for c in cells)}")
    return [c for c in cells if any(match(c, p) for p in patterns)]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    fronts = args.suite == "pareto"  # The Pareto suite (mtljax/compare/pareto.py) has its own page.
    table = "docs/pareto.md" if fronts else "docs/results.md"
    args.page = table if args.page == "docs/results.md" else args.page
    try:
        if args.suite not in SUITES and not fronts:
            raise ValueError(f"unknown suite {args.suite!r}; choose one of {', '.join(SUITES.names())}, pareto")
        if args.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
        suite = pareto.PARETO if fronts else SUITES[args.suite]
        cells = suite.cells(args.suite, args.set, args.seeds)
        probe = cells[0] if fronts else next(c for c in cells if c.name == "equal")
        probe.config()  # A bad --set fails here, before anything runs.
        chosen = _selected(cells, args.only)
    except (ValueError, config.ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    root = Path(args.root) / args.suite
    if args.list:
        for cell in cells:
            now = cellrun.state(cell, root)
            print(f"{cell.name:28s} {now.status:10s} {now.run_dir or now.reason}")
        return 0
    codes = {} if args.report else cellrun.run(chosen, root)
    states = [cellrun.state(c, root) for c in cells]
    text = (pareto.report if fronts else report)(suite, args.suite, states, args.seeds, Path(args.page), Path(args.figures), args.set)
    readme = Path(args.readme)
    if text and readme.exists() and f"<!-- benchmark:{args.suite}:start -->" in readme.read_text():
        page.write_section(readme, args.suite, f"**{suite.title}** (`{args.suite}`, {args.seeds} seeds, "
                                               f"[table]({table})): {text}")
    print(f"{args.page}: section {args.suite!r} written ({sum(s.status == 'complete' for s in states)} runs complete)")
    return 1 if any(codes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
