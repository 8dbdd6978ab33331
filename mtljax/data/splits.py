"""A config's train, validation and test splits: sources split, datasets built, task labels checked.

The source's training items are split into training and validation (`data.val_size`, drawn with
`data.split_seed` or the first ones); its test split is the test split, or, for a source without
one, a fraction `data.test_fraction` of its items held out with `data.split_seed` before
validation is drawn. The dataset is then built from each split on its own, with a seed of its
own derived from `data.split_seed`, and every task's labels are checked: a column missing, or a
label outside a task's classes, is a `DataError` naming the item's file and row.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from mtljax import tasks
from mtljax.data import sources, stream
from mtljax.data.datasets import DATASETS, DIGIT_CLASSES, Split, image_shape, source_names, split_indices
from mtljax.data.files import DataError, Table

HELD_OUT_STREAM = 1  # The held-out test draw's stream beside data.split_seed (validation uses the seed itself).


def source_splits(base: sources.Base, data_cfg: Mapping[str, Any], name: str) -> tuple[dict[str, Table], str]:
    """A source's items as train/val/test tables, and how the test split was made (a sentence)."""
    train, test = base.train, base.test
    how = "the source's own test split"
    if test is None:
        n_test = int(round(data_cfg["test_fraction"] * len(train)))
        if not 0 < n_test < len(train):
            raise DataError(f"{name}: data.test_fraction {data_cfg['test_fraction']} of its {len(train)} items "
                            f"holds out {n_test} for test")
        order = np.random.default_rng([data_cfg["split_seed"], HELD_OUT_STREAM]).permutation(len(train))
        test, train = train.take(np.sort(order[:n_test])), train.take(np.sort(order[n_test:]))
        how = (f"held out: {n_test} of the source's {n_test + len(train)} items (data.test_fraction "
               f"{data_cfg['test_fraction']}, drawn with data.split_seed {data_cfg['split_seed']})")
    if data_cfg["val_size"] >= len(train):
        raise DataError(f"{name}: data.val_size {data_cfg['val_size']} leaves no training items of its {len(train)}; "
                        "set data.val_size lower")
    train_idx, val_idx = split_indices(len(train), data_cfg["val_size"], data_cfg["val_from"], data_cfg["split_seed"])
    return {"train": train.take(train_idx), "val": train.take(val_idx), "test": test}, how


def _check_digits(table: Table, split: str, source: str) -> None:
    """The constructions and built-in tasks read the `label` column as digits 0-9."""
    if "label" not in table.columns:
        raise DataError(f"{source}: no column 'label', which the built-in tasks and constructions read (columns: "
                        f"{', '.join(table.columns) or 'none'}); declare tasks over its columns (docs/data.md)")
    labels = table.columns["label"]
    bad = np.flatnonzero(~np.isin(labels, np.arange(DIGIT_CLASSES))) if labels.dtype.kind in "iu" else [0]
    if len(bad):
        where, value = table.origin(bad[0], f"{source} {split}"), labels[bad[0]].item()
        raise DataError(f"{where}: label {value!r} outside 0-9, which the built-in tasks and constructions read; "
                        "declare a task over the column instead (docs/data.md)")


def task_labels(cfg: Mapping[str, Any], raw: Mapping[str, np.ndarray], table: Table | None, split: str) -> dict:
    """Each configured task's labels from a built split's raw labels, checked.

    Raises:
      DataError: a task's column missing, or a label outside a declared task's classes (naming the
        item where `table` says where each item came from).
    """
    source = cfg["data"]["source"]
    labels = {}
    for t in cfg["tasks"]:
        task = tasks.get(t, cfg)
        missing = [s for s in task.sources if s not in raw]
        if missing:
            raise DataError(f"{source}: task {t!r} reads column {missing[0]!r}, which this dataset does not have "
                            f"(columns: {', '.join(raw)})")
        try:
            labels[t] = task.labels(raw)
        except tasks.LabelError as exc:
            raise DataError(f"{_where(table, exc.index, source, split)}: label {exc.value!r} of column "
                            f"{task.sources[0]!r} is not one of the classes of task {t!r} "
                            f"({', '.join(task.class_names)})") from None
        outside = np.flatnonzero((labels[t] < 0) | (labels[t] >= task.outputs)) if task.kind == "classification" else []
        if len(outside):
            i, column = outside[0], "label" if task.sources == ("digit",) and "label" in raw else task.sources[0]
            raise DataError(f"{_where(table, i, source, split)}: task {t!r} has {task.outputs} classes, this item's "
                            f"label is {labels[t][i]} (column {column!r}); declare a task over the column "
                            "instead (docs/data.md)")
    return labels


def _where(table: Table | None, i: int, source: str, split: str) -> str:
    return table.origin(i, f"{source} {split}") if table is not None else f"{source} {split} item {i}"


def load_splits(cfg: Mapping[str, Any]) -> tuple[dict[str, Split], dict[str, Any]]:
    """Train, validation and test splits for `cfg`, and what the run's summary records of them
    (sources, sizes, how test was made, rows skipped as unreadable).

    Raises:
      DataError: a source cannot be read, is too small for the configured splits, or holds labels
        its tasks cannot read.
    """
    data_cfg = cfg["data"]
    dataset = DATASETS[data_cfg["dataset"]]
    names = source_names(data_cfg)
    bases = [sources.load(name, data_cfg) for name in names]
    parts = [source_splits(base, data_cfg, name) for base, name in zip(bases, names)]
    limit, shape = data_cfg["limit"], image_shape(data_cfg)
    # A digit task over other labels (EMNIST's 47) would train wrong silently: what reads them as digits checks.
    reads_digits = dataset.labels is not None or any("digit" in tasks.get(t, cfg).sources for t in cfg["tasks"])
    streamed = _streams(data_cfg, parts[0][0]["train"], dataset, names)
    splits = {}
    for k, name in enumerate(("train", "val", "test")):
        tables = tuple(_in_memory(part[name].head(limit), streamed and name == "train") for part, _ in parts)
        if reads_digits:
            for table, source in zip(tables, names):
                _check_digits(table, name, source)
        built, raw = dataset.build(tables, name, data_cfg, seed=data_cfg["split_seed"] * 1000 + k)
        built, raw = built[:limit], {key: v[:limit] for key, v in raw.items()}
        stored = shape if not (name == "train" and data_cfg.get("compose", "host") != "host") else built.shape[1:]
        if tuple(built.shape[1:]) != tuple(stored):
            raise DataError(f"{names[0]}: {name} images are {built.shape[1:]}, data.image_shape says {shape}")
        table = tables[0] if dataset.labels is None else None  # Items map to source rows only as they are.
        splits[name] = Split(built, task_labels(cfg, raw, table, name))
    info = {"sources": list(names), "image_shape": list(shape), "sizes": {s: len(splits[s]) for s in splits},
            "training_images": "streamed" if streamed else "in memory",
            "test_split": parts[0][1], "skipped_unreadable": sum(len(b.skipped) for b in bases)}
    return splits, info


def _streams(data_cfg: Mapping[str, Any], train: Table, dataset, names) -> bool:
    """Whether the training images stream from their files (`data.load`, stream.should_stream)."""
    can = isinstance(train.images, stream.LazyImages) and dataset.labels is None and len(names) == 1
    if data_cfg["load"] == "stream" and not can:
        raise DataError(f"{names[0]}: data.load 'stream' reads training images from their files as training goes, "
                        f"which dataset {data_cfg['dataset']!r} of this source cannot (streamed: dataset 'mnist' "
                        "over idx:DIR with plain, not gzipped, files, folder:DIR, hf: or tfds:)")
    return stream.should_stream(data_cfg["load"], train.images.nbytes, can)


def _in_memory(table: Table, keep_lazy: bool) -> Table:
    return table if keep_lazy else Table(np.asarray(table.images), table.columns, table.rows, table.locate)


def build_splits(cfg: Mapping[str, Any]) -> dict[str, Split]:
    """Train, validation and test splits for `cfg` (see `load_splits`)."""
    return load_splits(cfg)[0]
