"""Figures of a run: learning curves, confusion matrices and a grid of test samples."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np


def subplots(*grid: int, figsize: tuple[float, float], **kw):
    """(figure, axes) like `pyplot.subplots`, without pyplot: a bare `Figure` needs no backend or
    window and is not kept in pyplot's registry, so a run draws its figures on a thread of its own
    (`outputs.background`). matplotlib is imported here, on first use."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, **kw)


def plot_curves(history: Sequence[Mapping[str, float]], tasks: Mapping[str, Any], path: Path) -> None:
    """Total loss, then one panel per task (its headline metric), train vs validation, on a
    near-square grid (for seed sweeps: the seed mean with a band of ± one standard deviation)."""
    panels = 1 + len(tasks)
    cols = math.ceil(math.sqrt(panels))
    rows = math.ceil(panels / cols)
    fig, axes = subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    epochs = [r["epoch"] for r in history]
    keys = [("loss", "total loss")] + [(f"{t}/{task.headline}", f"{t} {task.headline}") for t, task in tasks.items()]
    for ax, (key, title) in zip(axes.flat, keys):
        for split, style in (("train", "-o"), ("val", "-s")):
            line, = ax.plot(epochs, [r[f"{split}/{key}"] for r in history], style, ms=3, label=split)
            if "seeds" in history[0]:  # A seed sweep: the mean, and a band of ± one std.
                spread = np.array([r["seeds"][f"{split}/{key}"] for r in history]).std(axis=1, ddof=1)
                mean = np.array([r[f"{split}/{key}"] for r in history])
                ax.fill_between(epochs, mean - spread, mean + spread, color=line.get_color(), alpha=0.2)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    for ax in list(axes.flat)[panels:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_confusion(confusion: np.ndarray, class_names: Sequence[str], title: str, path: Path) -> None:
    """A confusion matrix (rows true, columns predicted) with the count in each cell."""
    confusion = np.asarray(confusion)
    n = len(class_names)
    fig, ax = subplots(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n) if n > 2 else (3.6, 3.0))
    ax.imshow(confusion, cmap="Blues")
    threshold = confusion.max() / 2
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if confusion[i, j] > threshold else "black")
    ax.set_xticks(range(n), class_names)
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_samples(images: np.ndarray, labels: Mapping[str, np.ndarray], preds: Mapping[str, np.ndarray],
                 tasks: Mapping[str, Any], path: Path, count: int = 24) -> None:
    """A grid of images titled `task: predicted (true)` per task (`Task.describe`), wrong
    predictions (`Task.is_right`) in red."""
    count = min(count, len(images))
    cols = 6
    rows = math.ceil(count / cols)
    text_in = (4 + 10 * len(labels)) / 72  # Space under each image for one 10 pt line per task.
    fig, axes = subplots(rows, cols, figsize=(2.0 * cols, (1.8 + text_in) * rows + 0.4), squeeze=False)
    fig.subplots_adjust(left=0.02, right=0.98, top=1 - 0.4 / fig.get_figheight(), bottom=text_in / fig.get_figheight(),
                        hspace=text_in / 1.8, wspace=0.1)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= count:
            continue
        image = images[k]
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray")
        for line, t in enumerate(preds):
            true, pred, task = labels[t][k], preds[t][k], tasks[t]
            ax.annotate(f"{t}: {task.describe(pred)} ({task.describe(true)})", xy=(0.5, 0),
                        xycoords="axes fraction", xytext=(0, -3 - 10 * line), textcoords="offset points",
                        ha="center", va="top", fontsize=7, color="black" if task.is_right(pred, true) else "red")
    fig.suptitle("test samples: task: predicted (true); wrong in red", fontsize=9)
    fig.savefig(path, dpi=100)


def plot_pareto(summary: Mapping, tasks_xy: Sequence[str], path: Path) -> None:
    """The headline test metric of task x against task y (accuracy in %) for every point of a sweep
    (mean ± std over its seeds as error bars), each labelled with its values; the Pareto front
    (errors negated, so that both axes are maximised) is joined by a line."""
    from mtljax.outputs.summary import headlines, pareto_front  # Here: plots stays free of training imports.

    x_task, y_task = tasks_xy
    metric = headlines(summary)
    rows = summary["sweep"]["rows"]
    scale = {t: 100 if metric[t] == "accuracy" else 1 for t in tasks_xy}
    stat = lambda row, t, k: scale[t] * row["test_stats"][f"{t}/{metric[t]}"][k]
    xs, ys = [stat(r, x_task, "mean") for r in rows], [stat(r, y_task, "mean") for r in rows]
    sign = {t: 1 if metric[t] == "accuracy" else -1 for t in tasks_xy}
    front = pareto_front([sign[x_task] * x for x in xs], [sign[y_task] * y for y in ys])
    fig, ax = subplots(figsize=(6, 5))
    ax.errorbar(xs, ys, xerr=[stat(r, x_task, "std") for r in rows], yerr=[stat(r, y_task, "std") for r in rows],
                fmt="o", capsize=3, label="sweep points")
    on_front = sorted((x, y) for x, y, f in zip(xs, ys, front) if f)
    ax.plot(*zip(*on_front), "-", color="C3", label="Pareto front")
    for x, y, row in zip(xs, ys, rows):
        ax.annotate(", ".join(f"{k.split('.')[-1]}={v:g}" for k, v in row["values"].items()), (x, y),
                    textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel(f"{x_task} test {metric[x_task]}" + (" %" if scale[x_task] == 100 else ""))
    ax.set_ylabel(f"{y_task} test {metric[y_task]}" + (" %" if scale[y_task] == 100 else ""))
    ax.set_title(f"{summary['name']}: sweep of {', '.join(summary['sweep']['keys'])}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_conflict(history: Sequence[Mapping], path: Path) -> bool:
    """Task-gradient conflict over training: the cosine similarity of each pair of tasks' gradients
    (shared parameters) and each task's gradient norm over the mean (seed means). Returns whether
    the history had any diagnostics to plot."""
    rows = [r for r in history if any(k.startswith("conflict/") for k in r)]
    if not rows:
        return False
    fig, (ax_cos, ax_norm) = subplots(1, 2, figsize=(11, 4))
    epochs = [r["epoch"] for r in rows]
    for key in [k for k in rows[0] if k.startswith("conflict/cos/")]:
        ax_cos.plot(epochs, [r[key] for r in rows], "-o", ms=3, label=key.split("/", 2)[2].replace("|", " vs "))
    for key in [k for k in rows[0] if k.startswith("conflict/norm_ratio/")]:
        ax_norm.plot(epochs, [r[key] for r in rows], "-o", ms=3, label=key.split("/", 2)[2])
    ax_cos.axhline(0, color="k", lw=0.8)
    ax_cos.set_title("cosine between task gradients (shared parameters)")
    ax_norm.set_title("task gradient norm / mean norm")
    for ax in (ax_cos, ax_norm):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def plot_tree(tree: Sequence[Sequence[int]], tasks: Sequence[str], path: Path) -> None:
    """A Learning-to-Branch tree (`LearningToBranch.chosen_tree`'s form): the image on top, one
    row of nodes per level, the tasks' heads at the bottom, each joined to its parent."""
    rows = [[0], *[list(range(len(level))) for level in tree[:-1]], list(range(len(tasks)))]
    x = lambda level, k: (k + 0.5) / len(rows[level])
    fig, ax = subplots(figsize=(1.2 + 1.2 * max(map(len, rows)), 0.9 * len(rows)))
    for level in range(1, len(rows)):
        for k, parent in enumerate(tree[level - 1]):
            ax.plot([x(level - 1, parent), x(level, k)], [-level + 1, -level], color="0.5", zorder=1)
    for level, nodes in enumerate(rows):
        for k in nodes:
            last = level == len(rows) - 1
            label = "image" if level == 0 else tasks[k] if last else f"{level}.{k}"
            ax.text(x(level, k), -level, label, ha="center", va="center", fontsize=8, zorder=2,
                    bbox={"boxstyle": "round", "fc": "#cde" if last else "white", "ec": "0.3"})
    ax.set_xlim(0, 1)
    ax.set_ylim(-len(rows) + 0.5, 0.5)
    ax.axis("off")
    ax.set_title("chosen tree (levels: the backbone's blocks)", fontsize=9)
    fig.savefig(path, dpi=90, bbox_inches="tight")
