"""Tasks declared in a config (`columns`): a source's label column, classified or regressed.

    "tasks": ["smiling", "male", "age"],
    "columns": {"smiling": "Smiling",                                  # classes read from the data
                "male": {"column": "Male", "classes": [-1, 1]},        # classes given, then checked
                "age": {"column": "age", "kind": "regression"}},

A classification task's classes, when not given, are the distinct values of its column in the
source's training items, sorted; the resolved config records them, so evaluating or predicting a
run later needs no data. A label outside the classes is an error naming the item's file and row.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from mtljax import tasks
from mtljax.data import sources
from mtljax.data.datasets import DATASETS


class ColumnError(ValueError):
    """A `columns` entry is malformed; the message names the key (the config reports it)."""


def check_columns(declared: Any, registered) -> dict[str, dict]:
    """`columns` in full ({task: {"column", "kind", "classes"}}), checked.

    Raises:
      ColumnError: not a dict, a name taken by a registered task, or an entry malformed.
    """
    if not isinstance(declared, Mapping):
        raise ColumnError(f"columns: expected a dict task -> column, got {declared!r}")
    full = {}
    for name, raw in declared.items():
        if name in registered:
            raise ColumnError(f"columns.{name}: a registered task has this name; choose another")
        keys = set(raw) if isinstance(raw, Mapping) else set()
        if not isinstance(raw, (str, Mapping)) or keys - {"column", "kind", "classes"}:
            raise ColumnError(f"columns.{name}: expected a column name or a dict with keys column, kind, classes; "
                              f"got {raw!r}")
        spec = tasks.column_spec(raw)
        if not isinstance(spec["column"], str) or not spec["column"]:
            raise ColumnError(f"columns.{name}.column: expected the column's name, got {spec['column']!r}")
        if spec["kind"] not in tasks.COLUMN_KINDS:
            raise ColumnError(f"columns.{name}.kind: expected one of {', '.join(tasks.COLUMN_KINDS)}, "
                              f"got {spec['kind']!r}")
        classes = spec["classes"]
        if spec["kind"] == "regression" and classes is not None:
            raise ColumnError(f"columns.{name}.classes: a regression task has no classes")
        if not _classes_ok(classes):
            raise ColumnError(f"columns.{name}.classes: expected None, a count >= 2 or a list of >= 2 distinct "
                              f"numbers or strings, got {classes!r}")
        full[name] = {**spec, "classes": list(classes) if isinstance(classes, (list, tuple)) else classes}
    return full


def _classes_ok(classes: Any) -> bool:
    if classes is None:
        return True
    if isinstance(classes, int) and not isinstance(classes, bool):
        return classes >= 2
    values = list(classes) if isinstance(classes, (list, tuple)) else None
    return (values is not None and len(values) >= 2 and len(set(values)) == len(values)
            and all(isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in values))


def infer_classes(cfg: Mapping[str, Any]) -> dict[str, dict]:
    """`cfg["columns"]` with each classification task's missing classes read from its column.

    Raises:
      ColumnError: classes to infer with a dataset that builds its images (give them instead), or
        a column the source does not have.
      DataError: the source cannot be read.
    """
    declared, data_cfg = cfg["columns"], cfg["data"]
    missing = [n for n, spec in declared.items() if spec["kind"] == "classification" and spec["classes"] is None]
    if not missing:
        return dict(declared)
    if DATASETS[data_cfg["dataset"]].labels is not None:
        raise ColumnError(f"columns.{missing[0]}.classes: give them with dataset {data_cfg['dataset']!r} "
                          "(they are read from the source's columns with dataset 'mnist' only)")
    table = sources.load(data_cfg["source"], data_cfg).train
    full = dict(declared)
    for name in missing:
        column = declared[name]["column"]
        if column not in table.columns:
            raise ColumnError(f"columns.{name}.column: {column!r} is not a column of {data_cfg['source']} "
                              f"(columns: {', '.join(table.columns)})")
        values = np.unique(table.columns[column])
        if len(values) < 2:
            raise ColumnError(f"columns.{name}: column {column!r} holds one value only ({values[0]!r})")
        full[name] = {**declared[name], "classes": [v.item() for v in values]}
    return full
