"""What each ingredient of `experiments/threshold_best.py` contributes, each variant a run of its
own: the recipe; the two recipes before it (30 and 15 epochs, both tested at their least validation
loss); the 30-epoch recipe with one ingredient taken out, and additions tried beyond it (among them
the three that made the 15-epoch recipe). A run tested at its least validation loss is reported at
its last epoch too; each five-seed recipe's moving-average row reuses its runs: the same checkpoints
evaluated with their trained weights.

    python -m benchmarks.tables.ablate_best [--seeds 2] [--only NAME ...]      # trains what is missing
    python -m benchmarks.tables.ablate_best --report --update docs/performance.md
    python -m benchmarks.tables.ablate_best --report --only NAME ...          # those variants' rows only

Runs live under `checkpoints/ablate_best/<variant>/`; a variant whose run finished is not trained
again. Test accuracy per task, mean ± std over the variant's seeds, and its wall time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from mtljax import evaluate  # noqa: E402
from mtljax.outputs import rundir  # noqa: E402

ROOT = Path("checkpoints/ablate_best")
TASKS = ("digit", "parity", "threshold")
# The 15-epoch recipe that `threshold_best.py` held before its current one (the digit loss weighted
# like the others, the test metrics of the epoch with the least validation loss), as overrides of the file.
PREVIOUS = ["loss_weights={}", "train.restore_best=True"]
# The 30-epoch recipe before that: the earlier ablation took its ingredients out of it, so its rows start from these.
BEFORE = PREVIOUS + ["train.epochs=30", "train.batch_size=128", "optimizer.name=adam", "optimizer.weight_decay=0.0",
                     "optimizer.decay_on=conv", "train.label_smoothing=0.0"]
LATER = "15-epoch recipe (digit weighted 1)"
EARLIER = "30-epoch recipe (Adam, batch 128, no smoothing)"
# Variant -> its overrides of experiments/threshold_best.py.
VARIANTS = {
    "recipe": [],
    LATER: PREVIOUS,
    EARLIER: BEFORE,
    **{name: BEFORE + overrides for name, overrides in {
        # One ingredient of the 30-epoch recipe taken out.
        "no augmentation": ["augment.shift=0", "augment.rotate=0", "augment.scale=0"],
        "no BatchNorm": ["model.batchnorm=False"],
        "narrower trunk (32, 64, 64)": ["model.features=[32,64,64]"],
        "no dropout": ["model.dropout=0"],
        "15 epochs instead of 30": ["train.epochs=15"],
        # The best variant on two seeds, on five (`--only "no dropout, 5 seeds" --seeds 5`).
        "no dropout, 5 seeds": ["model.dropout=0"],
        # Additions tried beyond it (2 seeds each, read against its seeds 0 and 1).
        "5×5 first convolution": ["model.first_kernel=5"],
        "stronger augmentation (3 px, 15°, ±15 %)": ["augment.shift=3", "augment.rotate=15", "augment.scale=0.15"],
        "elastic distortion (α 34, σ 4)": ["augment.elastic=34", "augment.elastic_sigma=4"],
        # vgg_parity.py's trunk (SAME convs keep more of the image) with hidden heads instead of the dense layer.
        "VGG trunk (32, 64, 128), hidden heads of 128": [
            "model={'name': 'vgg', 'features': [32, 64, 128], 'batchnorm': True, 'dropout': 0.3, "
            "'head_hidden': 128, 'head_dropout': 0.3}"],
        # Probed at 15 epochs, at half the cost (read against the 15-epoch row); the three together
        # are the current recipe.
        "15 epochs, AdamW (decay 0.05, every kernel)": [
            "train.epochs=15", "optimizer.name=adamw", "optimizer.weight_decay=0.05", "optimizer.decay_on=kernels"],
        "15 epochs, label smoothing 0.1": ["train.epochs=15", "train.label_smoothing=0.1"],
        "15 epochs, batch 64": ["train.epochs=15", "train.batch_size=64"],
    }.items()},
}
VARIANTS["VGG trunk, 5 seeds"] = VARIANTS["VGG trunk (32, 64, 128), hidden heads of 128"]  # `--seeds 5`
# Tried beyond the 15-epoch recipe (2 seeds, read against its seeds 0 and 1); with its last epoch tested, the recipe.
VARIANTS["15-epoch recipe, digit loss weighted 2"] = ["train.restore_best=True"]
# The one probe that gains at its last epoch, on five seeds (`--seeds 5`): the recipe without AdamW,
# batch 64 and the digit weight.
VARIANTS["label smoothing alone, 5 seeds"] = ["optimizer.name=adam", "optimizer.weight_decay=0.0",
                                              "optimizer.decay_on=conv", "train.batch_size=128", "loss_weights={}"]
SEEDS_5 = {"recipe", LATER, EARLIER}  # Trained with 5 seeds; the others with `--seeds`.


def run_dir(name: str) -> Path | None:
    """The newest finished run of a variant (one with summary.json), if any."""
    runs = sorted((ROOT / slug(name)).glob("*/threshold_best/*/summary.json"))
    return runs[-1].parent if runs else None


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def train(name: str, seeds: int) -> None:
    """Trains a variant with `seeds` seeds (unless it has a finished run); an unfinished one (stopped
    before its summary) continues from its last checkpoint."""
    if run_dir(name) is not None:
        print(f"{name}: done ({run_dir(name)})")
        return
    root = ROOT / slug(name) / f"seeds{seeds}"
    started = sorted(root.glob(f"threshold_best/*/{rundir.CONFIG_FILE}"))
    resume = ["--resume", "--run-dir", str(started[-1].parent)] if started else []
    overrides = ["--set", f"seeds={seeds}", *VARIANTS[name]]
    subprocess.run([sys.executable, "-m", "mtljax.run", "experiments/threshold_best.py", "--root", str(root),
                    *resume, *overrides], check=True)


def tested(found: Path) -> str:
    """The checkpoint a finished run tests: 'best' (least validation loss, `train.restore_best`) or 'latest'."""
    return "best" if rundir.read_json(found / rundir.CONFIG_FILE)["train"]["restore_best"] else "latest"


CHECKPOINT = {"best": "least val loss", "latest": "last epoch"}


def row(name: str, per_seed: list[dict[str, float]], wall: float | None, which: str,
        variant: str | None = None) -> str:
    """One table row: accuracy mean ± std per task over the seeds, of the `which` checkpoint, with
    the overrides of `variant` (default: `name`)."""
    cells = []
    for t in TASKS:
        values = 100 * np.array([m[f"{t}/accuracy"] for m in per_seed])
        cells.append(f"{values.mean():.2f} ± {values.std(ddof=1) if len(values) > 1 else 0:.2f}")
    variant = name if variant is None else variant
    overrides = VARIANTS[variant]
    if variant != EARLIER and overrides[:len(BEFORE)] == BEFORE:  # Shown as changes to the earlier recipe.
        overrides = ["(30-epoch recipe)", *overrides[len(BEFORE):]]
    command = " ".join(overrides) or "—"
    return (f"| {name} | {len(per_seed)} | {CHECKPOINT[which]} | " + " | ".join(cells)
            + f" | {'' if wall is None else f'{wall / 60:.1f}'} | `{command}` |")


def variant_rows(name: str, found: Path) -> list[str]:
    """A finished variant's rows: its test metrics; a run tested at its least validation loss also
    at its last epoch; a five-seed recipe also on seeds 0 and 1 and without its moving average."""
    summary, which = rundir.read_json(found / rundir.SUMMARY_FILE), tested(found)
    per_seed = summary.get("test_seeds", [summary["test"]])
    rows = [row(name, per_seed, summary["wall_time_s"], which)]
    if which == "best":
        rows.append(row(name, evaluate.evaluate_run(found, "latest"), None, "latest"))
    if name in SEEDS_5:
        # The variants train seeds 0 and 1 (`--seeds 2`): a recipe on those alone compares like with like.
        pairs = [m for seed, m in zip(summary["seeds"], per_seed) if seed < 2]
        rows.append(row(f"{name}, seeds 0 and 1 only", pairs, None, which, name))
        rows.append(row(f"{name}, no moving average (its runs, trained weights)",
                        evaluate.evaluate_run(found, which, ema=False), None, which, name))
    return rows


def report(names: list[str] | None = None) -> str:
    """The table of every variant in `names` (default: all), see `variant_rows`."""
    lines = ["| variant | seeds | checkpoint | digit % | parity % | threshold % | wall min | overrides |",
             "|---|---:|---|---:|---:|---:|---:|---|"]
    for name in names or VARIANTS:
        found = run_dir(name)
        lines.extend([f"| {name} | — | | not run | | | | |"] if found is None else variant_rows(name, found))
    return ("`python -m benchmarks.tables.ablate_best --report` (test accuracy, mean ± std over the seeds, of the checkpoint "
            "with the least validation loss or of the last epoch; wall time of the whole run on this 2-core CPU, "
            "all its seeds)\n\n" + "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="seeds per variant (the two recipes: 5)")
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS))
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--update", type=Path, help="write the table into this Markdown file (ablate-best markers)")
    args = parser.parse_args()
    if not args.report:
        for name in args.only or VARIANTS:
            train(name, 5 if name in SEEDS_5 else args.seeds)
    text = report(args.only)
    print(text)
    if args.update:
        from mtljax import results

        results.update_readme(args.update, text, section="ablate-best")


if __name__ == "__main__":
    main()
