"""Train-step speed of mtljax against PyTorch on this machine, and a threshold.py epoch.

    python -m benchmarks.speed --update docs/performance.md   # the full table, also written into docs/performance.md
    python -m benchmarks.speed --quick              # batch 128 only, no threshold.py epoch
    python -m benchmarks.speed --quick --models multimnist --update docs/performance.md --section speed-architectures

PyTorch comes from the optional `bench` extra (`pip install -e ".[bench]"`, torch==2.13.0, CPU).
Every number is measured in this one invocation: the matmul peak, each step's images/s (best of
five timed windows, after compilation; this VM's speed varies by up to 2x from moment to moment), its GFLOP/s (forward FLOPs counted by XLA's cost analysis,
times 3 for forward + backward, the usual convention), and for threshold.py the wall time of one
epoch (train + validation), the compile time and the peak resident memory of the run, and the
time a whole threshold.py run takes to reach 99 % validation digit accuracy (compile included, no
compilation cache), and one round of the speedrun against its PyTorch recipe (benchmarks/speedrun.py).
On a GPU the same table is printed (and PyTorch runs on the GPU if it has one).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from mtljax import models, results

from benchmarks.common import BATCHES, MODELS, forward_flops, head_sizes, matmul_peak, mtljax_step_rate, torch_step_rate


def threshold_run(*overrides: str) -> tuple[float, dict, list[dict]]:
    """(process wall seconds, summary, metrics records) of experiments/threshold.py in a subprocess,
    with `--set overrides` and no compilation cache (a first run: everything compiles)."""
    with tempfile.TemporaryDirectory() as root:
        cmd = [sys.executable, "-m", "mtljax.run", "experiments/threshold.py", "--root", root,
               "--compile-cache", "off", *(["--set", *overrides] if overrides else [])]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        wall = time.perf_counter() - t
        run_dir = next(Path(root).glob("threshold/*"))
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        return wall, json.loads((run_dir / "summary.json").read_text()), records


def threshold_epoch() -> dict:
    """One epoch of experiments/threshold.py in a fresh process: times and peak memory."""
    wall, summary, _ = threshold_run("train.epochs=1")
    # The run's own high-water mark (VmHWM, from its summary): RUSAGE_CHILDREN, used before, also
    # counted the pages the child shared with this large process before exec (3 GiB for 1 GiB).
    return {"wall_s": wall, "epoch_s": summary["mean_epoch_time_s"], "compile_s": summary["compile_time_s"],
            "peak_rss_mib": summary["peak_rss_mib"]}


def time_to_accuracy(summary: dict, records: list[dict], key: str = "val/digit/accuracy",
                     target: float = 0.99) -> tuple[float, int] | None:
    """(seconds, epoch): compile time plus the epochs' times until `key` first reaches `target`,
    from a finished run's summary and metrics records; None if it never does."""
    seconds = summary["compile_time_s"]
    for record in records:
        seconds += record["epoch_time_s"]
        if record[key] >= target:
            return seconds, record["epoch"]
    return None


def threshold_time_to_99() -> str:
    """A whole threshold.py run in a subprocess; when its validation digit accuracy first reached 99 %."""
    _, summary, records = threshold_run()
    reached = time_to_accuracy(summary, records)
    if reached is None:
        return "threshold.py: validation digit accuracy never reached 99 % in 10 epochs"
    return (f"threshold.py, time to 99 % validation digit accuracy: {reached[0]:.1f} s (compile + epochs, "
            f"reached in epoch {reached[1]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 128 only, no threshold.py epoch")
    parser.add_argument("--models", help="only the models whose name contains this text")
    parser.add_argument("--batches", type=int, nargs="+", help=f"batch sizes (default {' '.join(map(str, BATCHES))})")
    parser.add_argument("--update", type=Path, help="the Markdown file to rewrite between its SECTION markers")
    parser.add_argument("--section", default="speed", help="the markers' name (default: speed)")
    args = parser.parse_args()
    batches = args.batches or ((128,) if args.quick else BATCHES)
    peak = matmul_peak()
    lines = [f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}; "
             f"matmul peak (2048² fp32): {peak:.0f} GFLOP/s", "",
             "| model | batch | mtljax img/s | GFLOP/s (% of peak) | XLA conv, 1 step/call img/s | PyTorch img/s | mtljax / PyTorch | compile s |",
             "|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines))
    for name, overrides, task_names, channels in [m for m in MODELS if args.models is None or args.models in m[0]]:
        model_cfg = models.default_config(**overrides)
        model = models.build_model({**model_cfg, "conv_impl": "xla"}, head_sizes(task_names))
        variables = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, channels)))
        flops = 3 * forward_flops(model, variables, (64, 28, 28, channels))
        for batch in batches:
            fast, compile_s = mtljax_step_rate(model_cfg, task_names, batch, channels=channels)
            # The naive path: XLA convs, one jitted step per call, no micro-batching.
            xla = {**model_cfg, "conv_impl": "xla"} if "conv_impl" in model_cfg else model_cfg  # MLPs have none.
            plain, _ = mtljax_step_rate(xla, task_names, batch, 0, 1, channels=channels)
            torch_rate = torch_step_rate(model_cfg, task_names, batch, channels)
            gflops = fast * flops / 1e9
            ratio = f"{fast / torch_rate:.2f}x" if torch_rate else "n/a"
            torch_text = f"{torch_rate:.0f}" if torch_rate else "not installed"
            lines.append(f"| {name} | {batch} | {fast:.0f} | {gflops:.0f} ({100 * gflops / peak:.0f} %) | {plain:.0f} | "
                         f"{torch_text} | {ratio} | {compile_s:.1f} |")
            print(lines[-1], flush=True)
    if not args.quick:
        epoch = threshold_epoch()
        lines += ["", f"threshold.py, 1 epoch in a fresh process: epoch {epoch['epoch_s']:.1f} s (train + validation), "
                      f"compile {epoch['compile_s']:.1f} s, process wall {epoch['wall_s']:.1f} s, "
                      f"peak RSS {epoch['peak_rss_mib']:.0f} MiB", "", threshold_time_to_99()]
        print("\n".join(lines[-3:]))
        from benchmarks import speedrun  # The speedrun's row: one round of benchmarks/speedrun.py.

        found = speedrun.rounds(1)[0]
        lines += ["", f"speedrun (experiments/speedrun.py, 10 seeds): {found['cold']['per_seed_s']:.2f} s per seed "
                      f"(compile cache cold; {found['warm']['per_seed_s']:.2f} s warm), {found['cold']['mean']:.2f} % "
                      f"test accuracy; PyTorch recipe {found['torch']['median_run_s']:.2f} s per run, "
                      f"{found['torch']['accuracy_mean']:.2f} %"]
        print(lines[-1])
    if args.update:
        results.update_readme(args.update, "\n".join(lines), section=args.section)


if __name__ == "__main__":
    main()
