#!/usr/bin/env bash
# The accelerator check: run once, first, on a GPU machine (at most 8 minutes on one GPU),
# with mtljax installed with the CUDA extra (`pip install -e ".[cuda,test,bench]"`), or from a
# checkout on a machine whose own Python already holds JAX with CUDA (the repository root then
# goes on PYTHONPATH):
#
#     bash benchmarks/device_check.sh 2>&1 | tee device_check.log
#
# It prints the device and the library versions, builds the MNIST cache (outside the timed
# parts), runs the tests that exercise the device paths (ops, parallel, seeds, training,
# checkpoints), the speed table of the threshold model at batch 128/512/2048, the train step's
# settings against each other at batch 512 for the threshold model
# (benchmarks/tables/step_settings.py: the figures the `auto` defaults come from; the BatchNorm
# models' with `--models BN`, measured before), the seeds-in-one-program rates at 1/8/64/256 seeds
# (vmap and loop), where a speedrun's time goes beside training (benchmarks/overhead.py), one
# round of the speedrun against its PyTorch recipe (benchmarks/speedrun.py), and
# experiments/threshold.py twice: with deterministic GPU kernels (mtljax.run's default) and
# without, for their cost.
# PyTorch runs on the GPU when it has one. Each part has its own time limit (480 s in all), so one
# slow part cannot eat the others' time; a part that fails is reported and the rest still run.
# With time to spare, every model of the speed table: `python -m benchmarks.speed --quick
# --batches 512` (about 3 minutes). The figures go into docs/accelerators.md.
[[ "${1:-}" == "--help" ]] && { echo "usage: bash benchmarks/device_check.sh  (the accelerator check; see the comments above in this file)"; exit 0; }
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export PYTHONUNBUFFERED=1
# The checkout first (a no-op where mtljax is installed editable): the scripts run as modules of
# the `benchmarks` package, which is not installed.
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
status=0
part() {  # part SECONDS TITLE COMMAND...: one timed part; its failure is noted, not fatal.
    local limit=$1 title=$2
    shift 2
    echo "=== $title (limit ${limit}s) ==="
    local start=$SECONDS
    timeout -k 5 "$limit" "$@" || { echo "!!! $title: exit $?"; status=1; }
    echo "--- $title: $((SECONDS - start)) s"
}
versions='import jax, flax, optax, orbax.checkpoint as ocp, chex, numpy
print("jax", jax.__version__, "flax", flax.__version__, "optax", optax.__version__, "orbax", ocp.__version__,
      "chex", chex.__version__, "numpy", numpy.__version__)
print(jax.default_backend(), jax.devices())
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.cuda.is_available())
except ImportError:
    print("torch not installed")'
part 20 "device" $PY -c "$versions"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
part 15 "MNIST cache" $PY -c "from mtljax.data import mnist; print(mnist.load_mnist().train_images.shape)"
# Several test processes share the GPU: each takes memory as it needs it, not 75 % of it up front.
part 90 "tests" env XLA_PYTHON_CLIENT_PREALLOCATE=false $PY -m pytest -q -n 8 -p no:cacheprovider \
    -p no:benchmark --tb=line -rf tests/test_ops.py tests/test_parallel.py tests/test_seeds.py \
    tests/test_checkpoint.py tests/test_train.py
part 60 "speed, batch 128/512/2048" $PY -m benchmarks.speed --quick --batches 128 512 2048 --models "threshold"
part 55 "step settings, batch 512" $PY -m benchmarks.tables.step_settings --batches 512
part 70 "seeds in one program (1/8/64/256)" $PY -m benchmarks.scaling --skip runs devices --seeds 8 64 256
# Where a run's time goes beside training (summary.json's timing), cold and warm.
part 50 "run overhead, speedrun" $PY -m benchmarks.overhead --rounds 1 --experiments experiments/speedrun.py
part 50 "speedrun against its PyTorch recipe" $PY -m benchmarks.speedrun --rounds 1
part 35 "threshold.py, deterministic kernels" $PY -m mtljax.run experiments/threshold.py --root /tmp/device_check
part 35 "threshold.py, XLA's default kernels" env XLA_FLAGS=--xla_gpu_deterministic_ops=false \
    $PY -m mtljax.run experiments/threshold.py --root /tmp/device_check
exit $status
