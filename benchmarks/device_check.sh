#!/usr/bin/env bash
# The accelerator check: run once, first, on a GPU machine (about 8 minutes on one GPU), with
# mtljax installed with the CUDA extra (`pip install -e ".[cuda,test,bench]"`):
#
#     bash benchmarks/device_check.sh 2>&1 | tee device_check.log
#
# It prints the device, runs the tests that exercise the device paths (ops, parallel, seeds,
# training, checkpoints), the speed table at batch 128/512/2048, the seeds-in-one-program
# rates of benchmarks/scaling.py (1/8/64 seeds, vmap and loop), the speedrun, and one full
# experiments/threshold.py run. Each part has its own time limit, so one slow part cannot eat
# the others' time; a part that fails is reported and the rest still run. The figures go into
# docs/performance.md (accelerator section) with the device named.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export PYTHONUNBUFFERED=1
status=0
part() {  # part SECONDS TITLE COMMAND...: one timed part; its failure is noted, not fatal.
    local limit=$1 title=$2
    shift 2
    echo "=== $title (limit ${limit}s) ==="
    local start=$SECONDS
    timeout "$limit" "$@" || { echo "!!! $title: exit $?"; status=1; }
    echo "--- $title: $((SECONDS - start)) s"
}
part 60 "device" $PY -c "import jax; print(jax.__version__, jax.default_backend(), jax.devices())"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
part 150 "tests" $PY -m pytest -q -x -n 0 -p no:cacheprovider tests/test_ops.py tests/test_parallel.py \
    tests/test_seeds.py tests/test_checkpoint.py
part 120 "speed, batch 128/512/2048" $PY benchmarks/speed.py --quick --batches 128 512 2048 \
    --models "threshold"
part 60 "speed, every model at 512" $PY benchmarks/speed.py --quick --batches 512
part 60 "seeds in one program (1/8/64)" $PY benchmarks/scaling.py --skip runs devices --seeds 8 64
part 40 "speedrun" $PY -m mtljax.run experiments/speedrun.py --root /tmp/device_check
part 60 "threshold.py" $PY -m mtljax.run experiments/threshold.py --root /tmp/device_check
exit $status
