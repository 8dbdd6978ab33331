"""Seeds in one program against seeds run apart, and throughput against device count.

    python -m benchmarks.scaling                          # prints the three tables
    python -m benchmarks.scaling --update docs/usage.md   # and writes them into docs/usage.md

Step rates: the threshold.py network (cnn3, 3 heads) at batch 128, the trainer's own jitted train
call on random data (benchmarks/speed.py's harness), for 1 seed and for N seeds run the two ways
one program can hold them (`train.replicas`): `vmap` (one batched program) and `loop` (the replicas
one after another inside the program, each unbatched). All variants are built first and timed in
alternating windows, so they share this VM's speed phases; the table gives the median.

Whole runs: `python -m mtljax.run experiments/threshold.py --seeds 8` against 8 separate runs of
the same experiment (`--set seed=k`), each a fresh process, as a user would launch them: process
start, imports, data, compiling (each way with its own fresh compilation cache, so the separate
runs compile once and load the program after), training, evaluation, checkpoints and figures.

Devices: the same call with the batch split over D devices of a `data` mesh. On a CPU the devices
are fakes (`--xla_force_host_platform_device_count`) sharing the same cores, so this shows the
overhead of partitioning there, not a speed-up; on a multi-device machine run it as is.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mtljax import config, results

SEEDS = (2, 4, 8)
MODES = ("vmap", "loop")
DEVICES = (1, 2, 4, 8)
BATCH = 128
WINDOWS = 5


def _speed():
    """benchmarks/speed.py, the harness."""
    from benchmarks import common as speed

    return speed


def _bench(seeds: int, mode: str):
    """benchmarks/speed.py's TrainBench of the threshold model with `seeds` replicas run as `mode`."""
    speed = _speed()
    _, model_cfg, task_names, _ = speed.MODELS[0]
    return speed.train_bench(model_cfg, task_names, BATCH, seeds=seeds, replicas=mode)


def seed_rate_table(seeds: tuple[int, ...] = SEEDS) -> str:
    """Median img/s of every (seeds, mode), all seeds' images counted, relative to one seed's, from
    alternating windows: 1.00 means a seed's step costs what it costs in a plain run."""
    benches = {(1, "plain"): _bench(1, "loop"), **{(n, m): _bench(n, m) for n in seeds for m in MODES}}
    rates = _speed().median_rates(benches, WINDOWS)
    one = rates[(1, "plain")]
    lines = [f"Step rate of N seeds in one program, threshold model, batch {BATCH} (median of {WINDOWS} alternating windows; "
             f"1 seed: {one:,.0f} img/s):", "",
             "| seeds | vmap: img/s (all seeds) | vmap / 1 seed | loop: img/s (all seeds) | loop / 1 seed | compile s (vmap, loop) |",
             "|---|---|---|---|---|---|"]
    for n in seeds:
        v, lp = (rates[(n, m)] for m in MODES)
        lines.append(f"| {n} | {v:,.0f} | {v / one:.2f} | {lp:,.0f} | {lp / one:.2f} | "
                     f"{benches[(n, 'vmap')].compile_s:.1f}, {benches[(n, 'loop')].compile_s:.1f} |")
    return "\n".join(lines)


def _run(root: Path, cache: Path, *args: str) -> float:
    """Wall seconds of one `mtljax.run experiments/threshold.py` process."""
    cmd = [sys.executable, "-m", "mtljax.run", "experiments/threshold.py", "--root", str(root),
           "--compile-cache", str(cache), *args]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=Path(__file__).parent.parent)
    return time.perf_counter() - t


def run_table(seeds: int = 8, epochs: tuple[int, ...] = (1, 3), rounds: int = 2) -> str:
    """Wall time of `--seeds N` against N separate runs, for runs of each number of epochs: the
    two ways alternate (their order too) over `rounds` rounds; the ratio is of the medians."""
    lines = [f"Whole runs of threshold.py, {seeds} seeds, each a fresh process (`--seeds {seeds}` "
             f"with train.replicas auto: {_resolved_mode()}; {rounds} alternating rounds):", "",
             f"| epochs | {seeds} separate runs s, each round | --seeds {seeds} s, each round | ratio of medians |",
             "|---|---|---|---|"]
    for n in epochs:
        apart, together = [], []
        for r in range(rounds):
            with tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                ways = [lambda: apart.append(sum(_run(tmp / "apart", tmp / "cache_apart", "--set", f"seed={k}",
                                                      f"train.epochs={n}") for k in range(seeds))),
                        lambda: together.append(_run(tmp / "together", tmp / "cache_together", "--seeds",
                                                     str(seeds), "--set", f"train.epochs={n}"))]
                for way in ways if r % 2 == 0 else ways[::-1]:
                    way()
        ratio = statistics.median(together) / statistics.median(apart)
        lines.append(f"| {n} | {' / '.join(f'{t:.1f}' for t in apart)} | {' / '.join(f'{t:.1f}' for t in together)} "
                     f"| {ratio:.2f} |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


def _resolved_mode() -> str:
    from mtljax.train import experiment

    return experiment.resolve_replicas(config.resolve({"tasks": ["digit"]}))


def in_subprocess(devices: int) -> tuple[float, float]:
    """(img/s, compile s) of one seed in a fresh process that sees `devices` (fake, on CPU) devices."""
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    code = (f"import json, jax; from benchmarks import common as speed; assert len(jax.devices()) == {devices}; "
            f"m = speed.MODELS[0]; print(json.dumps(speed.mtljax_step_rate(m[1], m[2], {BATCH})))")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=Path(__file__).resolve().parents[1], check=True,
                         capture_output=True, text=True).stdout
    return tuple(json.loads(out.strip().splitlines()[-1]))


def device_table() -> str:
    lines = [f"Devices (data parallel, 1 seed, batch {BATCH}, fake CPU devices on the same 2 cores):", "",
             "| devices | img/s | compile s |", "|---|---|---|"]
    for d in DEVICES:
        rate, compile_s = in_subprocess(d)
        lines.append(f"| {d} | {rate:,.0f} | {compile_s:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", type=Path, help="write the tables into this Markdown file (scaling markers)")
    parser.add_argument("--skip", nargs="*", default=[], choices=("rates", "runs", "devices"),
                        help="tables to leave out")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="seed counts of the rate table")
    args = parser.parse_args()
    parts = {"rates": lambda: seed_rate_table(tuple(args.seeds)), "runs": run_table, "devices": device_table}
    text = "\n\n".join(fn() for name, fn in parts.items() if name not in args.skip)
    print(text)
    if args.update:
        results.update_readme(args.update, text, section="scaling")


if __name__ == "__main__":
    main()
