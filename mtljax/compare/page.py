"""A suite's section of the results page: the ranked table, the front, the figures and a paragraph
written from the numbers. Every number comes from the suite's run directories; a run that is missing
or unfinished is shown as such."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

from mtljax.compare.analysis import Front, Row, ranked
from mtljax.compare.cells import CellState
from mtljax.compare.suites import Suite

BETTER, WORSE = "▲", "▼"  # A paired interval wholly on the better or the worse side of zero.


def interval(iv: Mapping[str, float] | None, digits: int = 2, sign: bool = False) -> str:
    """'mean [low, high]' (one seed: the mean alone)."""
    if iv is None:
        return "–"
    f = f"{{:+.{digits}f}}" if sign else f"{{:.{digits}f}}"
    if math.isnan(iv["half"]):
        return f.format(iv["mean"])
    return f"{f.format(iv['mean'])} [{f.format(iv['low'])}, {f.format(iv['high'])}]"


def paired(diff: Mapping[str, float] | None, higher_is_better: bool, digits: int = 2) -> str:
    """A paired difference to equal weighting, marked when its interval excludes zero."""
    if diff is None:
        return "–"
    mark = ""
    if diff["excludes_zero"]:
        mark = f" {BETTER if (diff['mean'] > 0) == higher_is_better else WORSE}"
    return interval(diff, digits, sign=True) + mark


def _digits(summary_tasks: Mapping[str, dict], task: str) -> int:
    return 2 if summary_tasks[task]["headline"] == "accuracy" else 3


def ranked_table(rows: Sequence[Row], tasks: Sequence[str], kinds: Mapping[str, dict]) -> str:
    """The ranked table: Δm with its interval, paired differences to equal weighting, cost."""
    head = (["#", "method", "Δm % [95 % CI]", "Δm − equal"] + [f"{t} − equal" for t in tasks]
            + ["step time vs equal", "wall (min)"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k, r in enumerate(ranked(rows), 1):
        if r.status != "complete":
            if r.status != "refused":
                lines.append(f"| – | {r.label} | {r.status} |" + " |" * (len(head) - 3))
            continue
        vs = r.vs_equal or {}
        if r.name == "equal":  # The reference of the paired columns.
            cells = [str(k), f"**{r.label}**", interval(r.dm)] + ["(reference)"] * (len(tasks) + 1)
        else:
            cells = [str(k), r.label, interval(r.dm), paired(vs.get("Δm"), True)]
            cells += [paired(vs.get(t), kinds[t]["higher_is_better"], _digits(kinds, t)) for t in tasks]
        cells += [f"{r.cost:.2f}x" if r.cost else "–", f"{'' if r.wall_exact else '≥ '}{r.wall_s / 60:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def task_table(rows: Sequence[Row], tasks: Sequence[str], kinds: Mapping[str, dict]) -> str:
    """Each method's headline per task: mean ± std [95 % t-interval] over seeds."""
    head = ["method"] + [f"{t} {kinds[t]['headline']}" + (" %" if kinds[t]["headline"] == "accuracy" else "")
                         for t in tasks]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r.status == "complete":
            cells = [f"{r.per_task[t]['mean']:.{_digits(kinds, t)}f} ± {r.per_task[t]['std']:.{_digits(kinds, t)}f} "
                     f"[{r.per_task[t]['low']:.{_digits(kinds, t)}f}, {r.per_task[t]['high']:.{_digits(kinds, t)}f}]"
                     for t in tasks]
            lines.append(f"| {r.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def front_table(fronts: Sequence[Front]) -> str:
    """Per group of tasks and objective: reference, hypervolumes and the methods beyond the front."""
    lines = ["| tasks | objective | reference | hypervolume of the front | added by the methods' points | methods beyond the front |",
             "|---|---|---|---|---|---|"]
    for f in fronts:
        beyond = f"{len(f.beyond)} of {f.methods}" + (f" ({', '.join(f.beyond)})" if f.beyond else "")
        ref = ", ".join(f"{v:g}" for v in f.reference)
        added = f.hypervolume_with_methods - f.hypervolume
        lines.append(f"| {' / '.join(f.tasks)} | test {f.objective} | ({ref}) | {f.hypervolume:.6g} | "
                     f"{f'+{added:.3g}' if added > 0 else '0'} | {beyond} |")
    return "\n".join(lines)


def drift_note(rows: Sequence[Row]) -> str:
    """Static weights at 1 are equal weighting's computation: their step-time ratio is the drift
    between the two runs' windows."""
    static = next((r for r in rows if r.name == "static" and r.status == "complete" and r.cost), None)
    if static is None:
        return ""
    return (f": static weights, the same computation as equal weighting, measured {static.cost:.2f}x, "
            "so ratios within that distance of 1 are drift, not cost")


def noise_floor(fronts: Sequence[Front], rows: Sequence[Row]) -> str:
    """How far the swept point with every weight 1 (equal weighting, trained inside the larger
    program) lies from the equal-weighting run: the size of a difference that is only float
    rounding grown through training."""
    equal = next((r for r in rows if r.name == "equal" and r.status == "complete"), None)
    whole = [f for f in fronts if len(f.tasks) == len(fronts[-1].tasks)]
    if equal is None or not whole:
        return ""
    unit = [k for k, w in enumerate(whole[0].weights) if all(v == 1.0 for v in w.values())]
    if not unit:
        return ""
    gaps = {f.objective: max(abs(f.points[unit[0], i] - getattr(equal, f.objective)[t]) for i, t in enumerate(f.tasks))
            for f in whole}
    return (f"The swept point with every weight 1 is equal weighting trained inside the larger program: its mean "
            f"test losses differ from the equal-weighting run's by at most {gaps['loss']:.2g} and its errors by "
            f"{gaps['error']:.2g} (float rounding in another program, grown through training), the size of a "
            f"difference that means nothing.")


def paragraph(rows: Sequence[Row], fronts: Sequence[Front]) -> str:
    """What the numbers show, in sentences built from them."""
    done = [r for r in rows if r.status == "complete" and r.name != "equal" and r.vs_equal]
    if not done:
        return "Not enough finished runs (equal weighting, a method and every single-task baseline) to compare yet."
    better = [r.label for r in done if r.vs_equal["Δm"]["excludes_zero"] and r.vs_equal["Δm"]["mean"] > 0]
    worse = [r.label for r in done if r.vs_equal["Δm"]["excludes_zero"] and r.vs_equal["Δm"]["mean"] < 0]
    n, verb = len(done), lambda k, one, many: one if k == 1 else many
    text = [f"Of {n} method{verb(n, '', 's')} compared with equal weighting by seed, "
            + (f"{len(better)} {verb(len(better), 'beats', 'beat')} it on Δm beyond the 95 % interval "
               f"({', '.join(better)})" if better else "no method beats equal weighting on Δm beyond its 95 % interval")
            + (f"; {len(worse)} {verb(len(worse), 'is', 'are')} worse beyond it ({', '.join(worse)})" if worse
               else "; none is worse beyond it")
            + f"; the other {n - len(better) - len(worse)} {verb(n - len(better) - len(worse), 'is', 'are')} within it "
            f"(with {n} comparisons at 95 %, about {0.05 * n:.1f} would exclude zero by chance alone)."]
    best = ranked(done)[0]
    equal = next((r for r in rows if r.name == "equal" and r.status == "complete"), None)
    if best.dm and equal and equal.dm:
        text.append(f"The best mean Δm is {best.label}'s, {best.dm['mean']:+.2f} % (equal weighting: "
                    f"{equal.dm['mean']:+.2f} %).")
    for f in fronts:
        if len(f.tasks) == len(fronts[-1].tasks) and f.objective in ("loss", "error"):
            among = " (equal weighting among them: within float noise of the front's own equal-weights point)" \
                if "equal" in f.beyond else ""
            text.append(f"Against the scalarization front of static loss weights ({' / '.join(f.tasks)}, test "
                        f"{f.objective}), {len(f.beyond)} of {f.methods} methods land beyond it{among}.")
    return " ".join(text)


def suite_header(suite: Suite, states: Sequence[CellState], seeds: int, extra: Sequence[str] = ()) -> str:
    """The protocol, the seeds, how many cells are complete and the suite's wall time."""
    done = [s for s in states if s.status == "complete"]
    todo = [s.cell.name for s in states if s.status in ("missing", "unfinished")]
    walls = [s.wall for s in done]
    hours, exact = sum(w for w, _ in walls) / 3600, all(e for _, e in walls)
    changed = f" Every run here also sets {' '.join(f'`{e}`' for e in extra)}." if extra else ""
    return (f"{suite.about}{changed} {seeds} seeds per run (0–{seeds - 1}) in one compiled program; seed i gives every "
            f"run the same data order and, for the same network, the same initialisation, so methods are "
            f"compared pair by pair. {len(done)} of {len(states) - sum(s.status == 'refused' for s in states)} "
            f"runs complete" + (f" (not yet: {', '.join(todo)})" if 0 < len(todo) <= 8 else
                               f" ({len(todo)} not yet: shown as missing)" if todo else "") +
            f"; their wall time on this 2-core CPU: {'' if exact else 'at least '}{hours:.1f} h in all"
            + ("" if exact else " (≥: runs resumed before wall times were carried across processes; the sum of "
               "their epochs' times)") + ".")


def published_table(suite: Suite, rows: Sequence[Row], singles: Mapping[str, float] | None) -> str:
    """The published figures beside this suite's own for the same methods."""
    ours = {"single-task": singles, "uniform scaling": _means(rows, "equal"), "MGDA-UB": _means(rows, "mgda_ub")}
    tasks = list(suite.published[0][1])
    lines = ["| | " + " | ".join(f"{t}: published | {t}: here" for t in tasks) + " |",
             "|---|" + "---|" * (2 * len(tasks))]
    for label, values in suite.published:
        here = ours.get(label)
        cells = [f"{values[t]:.2f} | " + (f"{here[t]:.2f}" if here else "missing") for t in tasks]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\n{suite.published_note}"


def _means(rows: Sequence[Row], name: str) -> dict[str, float] | None:
    row = next((r for r in rows if r.name == name and r.status == "complete"), None)
    return {t: iv["mean"] for t, iv in row.per_task.items()} if row else None


def refused_note(states: Sequence[CellState]) -> str:
    """The cells the config refuses, with the reason (one line for each reason)."""
    reasons: dict[str, list[str]] = {}
    for s in states:
        if s.status == "refused":
            reasons.setdefault(s.reason.split(", which architecture")[0], []).append(s.cell.label)
    return " ".join(f"Not applicable: {', '.join(labels)} ({reason.split(': ', 1)[-1]})." for reason, labels in reasons.items())


def write_section(path: Path, name: str, text: str) -> None:
    """Replaces the text between the page's markers for suite `name` (appends them if absent)."""
    start, end = f"<!-- benchmark:{name}:start -->", f"<!-- benchmark:{name}:end -->"
    page = path.read_text() if path.exists() else ""
    if start in page and end in page:
        page = page[:page.index(start)] + f"{start}\n{text}\n" + page[page.index(end):]
    else:
        page = page.rstrip("\n") + ("\n\n" if page else "") + f"{start}\n{text}\n{end}\n"
    path.write_text(page)
