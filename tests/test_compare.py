"""`python -m mtljax.compare` end to end on a tiny suite: runs, reuse, resume, the page's numbers
against an independent computation from the runs' summaries, and bad input."""

import contextlib
import glob
import json
import sys

import numpy as np
import pytest

from mtljax import run as run_command
from mtljax.compare import __main__ as bench, cells as cellrun
from mtljax.outputs import stats

TINY = ["data.val_size=100", "model.features=[4,8,8]", "model.dense=16", "train.epochs=1",
        "train.batch_size=50", "train.eval_batch_size=100"]


@pytest.fixture
def in_process(monkeypatch):
    """Cells run in this process (the suite's compiled code and quick-compile setting are shared),
    without their runs' own figures; the command line is the one a subprocess would get."""
    launched = []

    def launch(cmd, out):
        assert cmd[:3] == [sys.executable, "-m", "mtljax.run"]
        launched.append(cmd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            return run_command.main(cmd[3:])

    monkeypatch.setattr(cellrun, "launch", launch)
    return launched


def _argv(tmp_path, data_dir, *more):
    return ["multimnist", "--seeds", "2", "--root", str(tmp_path / "runs"), "--page", str(tmp_path / "results.md"),
            "--figures", str(tmp_path / "figures"), "--readme", str(tmp_path / "README.md"), "--set", f"data.dir={data_dir}", *TINY, *more]


def _summary(tmp_path, cell):
    return json.loads(open(glob.glob(str(tmp_path / f"runs/multimnist/multimnist_{cell}/*/summary.json"))[0]).read())


@pytest.mark.long(40)
def test_tiny_suite_end_to_end(tmp_path, tiny_data_dir, in_process, capsys):
    (tmp_path / "README.md").write_text("<!-- benchmark:multimnist:start -->\n<!-- benchmark:multimnist:end -->\n")
    assert bench.main(_argv(tmp_path, tiny_data_dir, "--only", "single_*", "equal", "uw", "front")) == 0
    assert len(in_process) == 5
    page = (tmp_path / "results.md").read_text()
    assert "<!-- benchmark:multimnist:start -->" in page and (tmp_path / "figures/multimnist/pareto_left_right.png").exists()
    assert "| – | upgrad | missing |" in page  # Not run: shown as missing, never as a number.
    assert "Not applicable: cross_stitch + mgda_ub" in page
    readme = (tmp_path / "README.md").read_text()
    assert "**MultiMNIST: left and right digit**" in readme and "Of 1 method compared with equal weighting" in readme

    # Δm and the paired difference, recomputed from the summaries with NumPy and SciPy.
    acc = {c: {t: 100 * np.array([m[f"{t}/accuracy"] for m in summary["test_seeds"]]) for t in summary["tasks"]}
           for c in ("single_left", "single_right", "equal", "uw") for summary in [_summary(tmp_path, c)]}
    base = {"left": acc["single_left"]["left"].mean(), "right": acc["single_right"]["right"].mean()}
    dm = {c: 100 * np.mean([(acc[c][t] - base[t]) / base[t] for t in base], axis=0) for c in ("equal", "uw")}
    diff = stats.paired_difference(dm["uw"], dm["equal"])
    row = next(line for line in page.splitlines() if "| uw |" in line)
    assert f"{dm['uw'].mean():.2f} [" in row and f"{diff['mean']:+.2f} [{diff['low']:+.2f}, {diff['high']:+.2f}]" in row

    # The front's hypervolume on test losses, from the sweep's rows.
    rows = _summary(tmp_path, "front")["sweep"]["rows"]
    assert len(rows) == 7
    losses = np.array([[r["test"]["left/loss"], r["test"]["right/loss"]] for r in rows])
    hv = stats.hypervolume(losses, [2.0, 2.0])
    assert f"| left / right | test loss | (2, 2) | {hv:.6g} |" in page

    # Again: every run is reused, nothing trains.
    capsys.readouterr()
    assert bench.main(_argv(tmp_path, tiny_data_dir, "--only", "single_*", "equal", "uw", "front")) == 0
    assert len(in_process) == 5 and capsys.readouterr().out.count("reused") == 5

    # An interrupted run (no summary yet) is resumed in its own directory.
    uw_runs = tmp_path / "runs/multimnist/multimnist_uw"
    (run_dir,) = uw_runs.iterdir()
    (run_dir / "summary.json").unlink()
    assert bench.main(_argv(tmp_path, tiny_data_dir, "--only", "uw")) == 0
    assert in_process[-1][-3:] == ["--resume", "--run-dir", str(run_dir)]
    assert list(uw_runs.iterdir()) == [run_dir] and (run_dir / "summary.json").exists()

    # Its wall time counts both processes. One resumed before checkpoints carried the wall time
    # over (its summary then holds only the last process's) shows its epochs' sum, as a bound.
    equal_path = glob.glob(str(tmp_path / "runs/multimnist/multimnist_equal/*/summary.json"))[0]
    equal = json.loads(open(equal_path).read())
    open(equal_path, "w").write(json.dumps({**equal, "wall_time_s": 1e-3}))
    assert bench.main(_argv(tmp_path, tiny_data_dir, "--report")) == 0
    page = (tmp_path / "results.md").read_text()
    # The ranked table's rows (its method is the second column).
    rows = {name: next(line for line in page.splitlines() if f" | {name} | " in line) for name in ("**equal**", "uw")}
    assert "| ≥ " in rows["**equal**"] and "| ≥ " not in rows["uw"] and "wall time on this 2-core CPU: at least" in page

    # Another protocol is never taken for this one's runs.
    capsys.readouterr()
    assert bench.main(_argv(tmp_path, tiny_data_dir, "train.epochs=2", "--list")) == 0
    assert "equal                        missing" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["nosuch"], "unknown suite 'nosuch'"),
    (["threshold", "--only", "nosuch"], "--only 'nosuch': no cell of this suite matches"),
    (["threshold", "--set", "optimizer.lr=fast"], "optimizer.lr"),
    (["threshold", "--seeds", "0"], "--seeds must be >= 1"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message, capsys):
    assert bench.main([*args, "--root", str(tmp_path / "runs"), "--page", str(tmp_path / "page.md")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists() and not (tmp_path / "page.md").exists()
