"""benchmarks/tables/speedrun_limits.py times the speedrun's own layers, and counts their FLOPs as XLA does."""

from __future__ import annotations

import jax

from benchmarks.tables import speedrun_limits
from mtljax import config, models


def _limits():
    return speedrun_limits


def test_the_layers_have_the_speedrun_networks_shapes():
    limits = _limits()
    cfg = config.load_experiment(limits.EXPERIMENT)
    model = models.build_model(cfg["model"], {"digit": 10})
    params = jax.eval_shape(lambda: model.init(jax.random.key(0), jax.numpy.zeros((1, 28, 28, 1))))["params"]
    model_shapes = sorted(leaf.shape for leaf in jax.tree.leaves(params) if len(leaf.shape) > 1)
    cases = limits.layer_cases(jax.random.key(0)).values()
    bench_shapes = sorted(p.shape for _, ps, _, _, _ in cases for p in ps if p.ndim > 1)
    assert bench_shapes == model_shapes  # Every kernel: 5×5×1×24, 3×3×24×32, 800×256, 256×10.
    for loss, ps, x, _, _ in cases:  # Each layer's input is a batch of micro-batches of 32.
        assert x.shape[:2] == (limits.BATCH // limits.MICRO, limits.MICRO)
        jax.eval_shape(loss, ps, x[0])


def test_flops_per_image_match_xlas_count_of_the_gradient():
    """The counted FLOPs (forward, then the kernel and input gradients each one forward's worth)
    are XLA's count of the jitted gradient, up to its elementwise ops (< 10 %)."""
    for name, (loss, ps, x, dx, flops) in _limits().layer_cases(jax.random.key(0)).items():
        grad = jax.jit(jax.grad(loss, argnums=(0, 1) if dx else 0))
        analysis = grad.lower(ps, x[0]).compile().cost_analysis()
        analysis = analysis[0] if isinstance(analysis, list) else analysis
        counted = analysis["flops"] / x.shape[1]
        assert flops <= counted < 1.1 * flops, name
