"""`mtljax.predict`: MNIST-style preparation of users' images, predictions from a real-data model,
and one clear line per bad file while the good ones are still predicted."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mtljax import predict, run
from conftest import run_codegen


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, real_mnist):
    """threshold.py trained for 2 epochs on 12,000 real images (~96 % digit accuracy)."""
    root = tmp_path_factory.mktemp("runs")
    args = ["experiments/threshold.py", "--root", str(root), "--set", "train.epochs=2", "data.limit=12000"]
    with run_codegen():  # A real model: running it takes longer than compiling it.
        assert run.main(args) == 0
    return next((root / "threshold").iterdir())


def _user_like(digit: np.ndarray, k: int) -> Image.Image:
    """An MNIST test digit as a user might have it: dark ink on light paper, another size, some in colour."""
    ink = digit.astype(np.float32) / 255
    size = (60 + 37 * k % 150, 50 + 53 * k % 170)
    gray = Image.fromarray(((1 - ink) * 255).astype(np.uint8)).resize(size, Image.BICUBIC)
    if k % 3 == 0:  # Blue ink on cream paper.
        a = np.asarray(gray, np.float32) / 255
        rgb = np.stack([0.95 * a + 0.05 * (1 - a), 0.92 * a + 0.1 * (1 - a), 0.85 * a + 0.6 * (1 - a)], -1)
        return Image.fromarray((rgb * 255).astype(np.uint8))
    return gray


@pytest.mark.real_data
def test_sensible_predictions_on_resized_inverted_digits(tmp_path, real_run, real_mnist, capsys):
    files, truth = [], []
    for k in range(20):
        path = tmp_path / (f"user{k}.jpg" if k % 2 else f"user{k}.png")
        _user_like(real_mnist.test_images[k], k).save(path)
        files.append(str(path))
        truth.append(int(real_mnist.test_labels[k]))
    capsys.readouterr()
    assert predict.main([str(real_run), *files, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)["predictions"]
    digits = [p["digit"]["class"] for p in out]
    assert np.mean(np.array(digits) == np.array(truth)) >= 0.85, (digits, truth)
    assert all(0 < p["digit"]["probability"] <= 1 and p["parity"]["class"] in (0, 1) for p in out)
    assert all(abs(sum(p["digit"]["probabilities"]) - 1) < 1e-4 for p in out)


@pytest.mark.real_data
def test_bad_files_get_one_line_each_and_good_ones_are_still_predicted(tmp_path, real_run, real_mnist, capsys):
    good = tmp_path / "good.png"
    _user_like(real_mnist.test_images[0], 1).save(good)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])
    blank = tmp_path / "blank.png"
    Image.new("L", (40, 40), 255).save(blank)
    bad = [tmp_path / "empty.png", tmp_path / "text.jpg", truncated, blank, tmp_path / "missing.png", tmp_path]
    capsys.readouterr()
    assert predict.main([str(real_run), str(good), *map(str, bad)]) == 2
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert len(errors) == len(bad) and all(line.startswith("error: ") for line in errors)
    for path, reason in zip(bad, ["is empty", "not a readable", "not a readable", "no ink", "no such file",
                                  "is a directory"]):
        assert any(str(path) in line and reason in line for line in errors), (path, errors)
    assert captured.out.startswith(f"{good}: digit 7")


def test_a_run_without_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"tasks": ["digit"]}))
    assert predict.main([str(tmp_path), str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no best checkpoint") and err.count("\n") == 1
    assert predict.main([str(tmp_path / "nope"), "x.png"]) == 2


@pytest.mark.parametrize("shape", [(28, 28, 1), (42, 28, 1), (28, 28, 3)])
def test_prepare_is_mnist_style(shape):
    rgb = np.ones((100, 70, 3), np.float32)  # White paper,
    rgb[20:80, 30:40] = [0.1, 0.1, 0.8]  # a blue vertical stroke ("1").
    out = predict.prepare(rgb, shape)
    assert out.shape == shape and out.dtype == np.uint8
    ink = out.max(-1).astype(np.float32)
    rows, cols = np.nonzero(ink > 50)
    assert rows.max() - rows.min() + 1 <= (20 if shape[0] == 28 else 40)  # Fitted into the box,
    ys, xs = np.indices(ink.shape)
    cy, cx = (ys * ink).sum() / ink.sum(), (xs * ink).sum() / ink.sum()
    assert abs(cy - (shape[0] - 1) / 2) <= 1 and abs(cx - (shape[1] - 1) / 2) <= 1  # centred by mass,
    assert ink[0].max() == 0 and ink[:, 0].max() == 0  # light ink on a dark background.
    if shape[2] == 3:
        assert out[..., 0].max() > 200 and out[..., 1].max() == 0  # Kept in its strongest of red/green.


@pytest.fixture
def three_seeds(calibrated_run):
    """conftest's tiny three-seed run and its image."""
    return calibrated_run.run_dir, calibrated_run.image


def _predict_json(capsys, *args) -> dict:
    capsys.readouterr()
    assert predict.main([*map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_seed_ensembles_average_or_vote_the_calibrated_seeds(three_seeds, capsys):
    run_dir, image = three_seeds
    alone = [_predict_json(capsys, run_dir, image, "--seed", k)["predictions"][0] for k in range(3)]
    mean = _predict_json(capsys, run_dir, image, "--seeds", "all")
    assert mean["seeds"] == [0, 1, 2] and mean["calibrated"]
    votes = _predict_json(capsys, run_dir, image, "--seeds", "0,1,2", "--ensemble", "majority")["predictions"][0]
    for t in ("digit", "parity", "threshold"):
        expected = np.mean([a[t]["probabilities"] for a in alone], axis=0)
        got = mean["predictions"][0][t]
        np.testing.assert_allclose(got["probabilities"], expected, atol=2e-6)
        assert got["class"] == int(np.argmax(expected))
        vote = votes[t]
        classes = [a[t]["class"] for a in alone]
        counts = np.bincount(classes, minlength=len(expected))
        assert counts[vote["class"]] == counts.max() and vote["votes"] == f"{counts.max()}/3"


def test_calibrated_probabilities_and_the_uncertain_mark(three_seeds, capsys):
    """Probabilities are softmax(logits / T) with the run's T (temperature 1 with --no-calibration);
    --min-confidence marks what falls below it."""
    from mtljax import calibration

    run_dir, image = three_seeds
    cfg, model, variables = predict.load_seeds(run_dir)
    logits = predict.seed_outputs(model, variables, [1], predict.prepare(predict.load_image(image), (28, 28, 1))[None])[0]
    temps = calibration.temperatures(run_dir, 1)
    got = _predict_json(capsys, run_dir, image, "--seed", "1")["predictions"][0]
    raw = _predict_json(capsys, run_dir, image, "--seed", "1", "--no-calibration")["predictions"][0]
    for t in cfg["tasks"]:
        np.testing.assert_allclose(got[t]["probabilities"], calibration.softmax(logits[t][0], temps[t]), atol=1e-6)
        np.testing.assert_allclose(raw[t]["probabilities"], calibration.softmax(logits[t][0]), atol=1e-6)
    marks = lambda p: [_predict_json(capsys, run_dir, image, "--min-confidence", p)["predictions"][0][t]["uncertain"]
                       for t in cfg["tasks"]]
    assert all(marks(1.01)) and not any(marks(0))


@pytest.mark.parametrize("args, message", [(["--seed", "0", "--seeds", "all"], "not both"),
                                           (["--seeds", "3"], "seeds 0..2"), (["--seeds", ","], "seeds 0..2"),
                                           (["--prepare", "stroke,sharpen"], "steps are")])
def test_bad_seed_choices_are_one_line(three_seeds, capsys, args, message):
    run_dir, image = three_seeds
    capsys.readouterr()
    assert predict.main([str(run_dir), str(image), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("width", [1, 2, 4, 6])
def test_stroke_width_of_long_bars(width):
    from mtljax.data import userimages

    bar = np.zeros((500, 20), bool)
    bar[10:490, 5:5 + width] = True
    # 2·area/perimeter = 2wL/(2w + 2L): the width, less w/L.
    assert userimages.stroke_width(bar) == pytest.approx(2 * width * 480 / (2 * width + 2 * 480))


def test_stroke_step_thins_thick_ink_to_mnist_width_and_keeps_thin_ink():
    from mtljax.data import userimages

    thick = np.zeros((100, 60), np.float32)
    thick[10:90, 24:36] = 1.0  # 12 pixels wide; fitted at 1/4 scale: 3 pixels, wider than MNIST's.
    out = userimages.normalise_stroke(thick, 0.25)
    assert userimages.stroke_width(out > 0.5) * 0.25 == pytest.approx(userimages.MNIST_STROKE, abs=0.5)
    thin = np.zeros((100, 60), np.float32)
    thin[10:90, 28:32] = 1.0
    assert userimages.normalise_stroke(thin, 0.25) is thin
