"""Users' broken data: each case is one `error:` line naming the file (and row or key), exit code 2,
and no run directory; skipping unreadable images is an option, counted and recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mtljax import run

from conftest import tiny_config
from test_sources import fake_items, idx_dir, write_folder, write_idx


def _run(tmp_path, capsys, source, **sections):
    sections["data"] = {"source": source, "val_size": 5, **sections.get("data", {})}
    cfg = tiny_config("unused", **sections)
    cfg["train"]["epochs"] = 1
    (tmp_path / "exp.py").write_text(f"CONFIG = {cfg!r}\n")
    code = run.main([str(tmp_path / "exp.py"), "--root", str(tmp_path / "runs")])
    return code, capsys.readouterr().err


def _folder_missing_image(tmp_path):
    write_folder(tmp_path / "imgs", extra_rows=["gone.png,round,train"])
    return f"folder:{tmp_path / 'imgs'}", {}, r"labels.csv row 42: cannot read image 'gone.png'"


def _folder_shapes(tmp_path):
    write_folder(tmp_path / "imgs", shapes=[None] * 7 + [(9, 9)] + [None] * 32)
    message = r"labels.csv row 9: image '7.png' is 9×9×1, the first image '0.png' 28×24×1"
    return f"folder:{tmp_path / 'imgs'}", {}, message


def _folder_undeclared_class(tmp_path):
    write_folder(tmp_path / "imgs")
    return (f"folder:{tmp_path / 'imgs'}", {"columns": {"shape": {"column": "shape", "classes": ["round", "oval"]}}},
            r"labels.csv row \d+ \(\d+.png\): label 'square' of column 'shape' is not one of the classes of task "
            r"'shape' \(round, oval\)")


def _npz_lengths(tmp_path):
    x, y = fake_items(100, 1)
    np.savez(tmp_path / "bad.npz", x_train=x, y_train=y[:90])
    return f"npz:{tmp_path / 'bad.npz'}", {}, r"bad.npz: y_train has shape \(90,\), x_train 100 images"


def _idx_magic(tmp_path):
    directory, _, _ = idx_dir(tmp_path)
    write_idx(directory / "train-labels-idx1-ubyte", np.zeros((300, 2), np.uint8))  # A 2-d array: magic 0x802.
    return f"idx:{directory}", {}, r"train-labels-idx1-ubyte: wrong magic number 0x00000802"


def _missing_column(tmp_path):
    directory, _, _ = idx_dir(tmp_path)
    return f"idx:{directory}", {"columns": {"size": "size"}}, r"columns.size.column: 'size' is not a column of idx:"


def _digits_outside(tmp_path):
    x, _ = fake_items(100, 1)
    np.savez(tmp_path / "emnist.npz", x_train=x, y_train=np.arange(100) % 47)
    message = r"emnist.npz y_train\[\d+\]: label 12 outside 0-9, which the built-in tasks"
    return f"npz:{tmp_path / 'emnist.npz'}", {"tasks": ["parity"]}, message


def _too_small_for_the_backbone(tmp_path):
    x, y = fake_items(100, 1, (8, 8))
    np.savez(tmp_path / "small.npz", x_train=x, y_train=y)
    message = r"model.name: backbone 'cnn3' with architecture 'hard' cannot take 8×8×1"
    return f"npz:{tmp_path / 'small.npz'}", {}, message


CASES = [_too_small_for_the_backbone, _folder_missing_image, _folder_shapes, _folder_undeclared_class, _npz_lengths,
         _idx_magic, _missing_column, _digits_outside]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__.lstrip("_"))
def test_bad_data_is_one_error_line(tmp_path, capsys, case):
    source, sections, message = case(tmp_path)
    sections = {"tasks": ["shape"] if "folder" in source else ["digit"], **sections}
    if "folder" in source and "columns" not in sections:
        sections["columns"] = {"shape": "shape"}
    code, err = _run(tmp_path, capsys, source, **sections)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert __import__("re").search(message, lines[0]), lines[0]
    assert not (tmp_path / "runs").exists()  # Nothing written.


def test_skipped_unreadable_images_are_counted(tmp_path, capsys):
    write_folder(tmp_path / "imgs", extra_rows=["gone.png,round,train", "also-gone.png,square,test"])
    code, err = _run(tmp_path, capsys, f"folder:{tmp_path / 'imgs'}", tasks=["shape"], columns={"shape": "shape"},
                     data={"skip_unreadable": True}, train={"batch_size": 10})
    assert code == 0 and "skipped 2 unreadable image(s)" in err
    summary = json.loads(next((tmp_path / "runs").glob("*/*/summary.json")).read_text())
    assert summary["data"]["skipped_unreadable"] == 2 and summary["data"]["sizes"]["test"] == 10
