"""The fast ops equal their plain Flax/XLA counterparts, values and gradients."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.test_util
import jax.numpy as jnp
import numpy as np
import pytest

from mtljax import config
from mtljax.models import BACKBONES, ops
from mtljax.train.experiment import resolve_conv_impl


@pytest.mark.parametrize("shape", [(2, 26, 26, 32), (2, 11, 11, 64), (3, 13, 13, 8), (1, 5, 5, 3), (2, 28, 28, 1)])
def test_max_pool_equals_reduce_window(shape):
    # Distinct values: no ties, so both gradients are defined the same way.
    x = jnp.asarray(np.random.default_rng(0).permutation(np.prod(shape)).reshape(shape), jnp.float32)
    ref = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))
    np.testing.assert_array_equal(ops.max_pool_2x2(x), ref(x))
    cotangent = jnp.asarray(np.random.default_rng(1).normal(size=ref(x).shape), jnp.float32)
    grad = jax.vjp(ops.max_pool_2x2, x)[1](cotangent)[0]
    np.testing.assert_array_equal(grad, jax.vjp(ref, x)[1](cotangent)[0])


CONV_SHAPES = [(2, 28, 28, 1, 32), (2, 13, 13, 32, 64), (2, 5, 5, 64, 64), (3, 12, 12, 3, 8), (1, 7, 9, 4, 5)]


@pytest.mark.parametrize("n,h,w,c,f,k", [(*shape, 3) for shape in CONV_SHAPES] + [(2, 28, 28, 1, 24, 5), (1, 9, 11, 3, 4, 5)])
def test_matmul_conv_equals_xla_conv(n, h, w, c, f, k):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(n, h, w, c)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(k, k, c, f)), jnp.float32)
    np.testing.assert_allclose(ops.conv_matmul(x, kernel), ops.conv_xla(x, kernel), rtol=1e-5, atol=1e-4)
    dy = jnp.asarray(rng.normal(size=(n, h - k + 1, w - k + 1, f)), jnp.float32)
    got = jax.vjp(ops.conv_matmul, x, kernel)[1](dy)
    want = jax.vjp(ops.conv_xla, x, kernel)[1](dy)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("chunk", [4, 8])
def test_chunked_matmul_conv_equals_the_whole_batch(chunk):
    """conv_matmul in chunks of examples: the values and both gradients of the whole batch
    (the weight gradient summed chunk by chunk: equal up to float summation order)."""
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(16, 9, 9, 5)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(3, 3, 5, 6)), jnp.float32)
    dy = jnp.asarray(rng.normal(size=(16, 7, 7, 6)), jnp.float32)
    whole = jax.vjp(lambda x, k: ops.conv_matmul(x, k), x, kernel)
    chunked = jax.jit(lambda x, k: jax.vjp(lambda x, k: ops.conv_matmul(x, k, chunk), x, k))
    y, vjp = jax.vjp(lambda x, k: ops.conv_matmul(x, k, chunk), x, kernel)
    np.testing.assert_allclose(y, whole[0], rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(y, ops.conv_xla(x, kernel), rtol=1e-5, atol=1e-4)
    for a, b in zip(vjp(dy), whole[1](dy)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(chunked(x, kernel)[0], y, rtol=1e-6, atol=1e-5)
    # A chunk that does not divide the batch, or covers it, leaves it whole.
    assert ops._chunks(x, 5) is None and ops._chunks(x, 16) is None and ops._chunks(x, 4).shape[:2] == (4, 4)


def test_low_memory_chunk_loop_equals_lax_map_and_makes_its_output_from_the_data():
    """Under `ops.low_memory` the chunked convolution's loop gives lax.map's values bit for bit,
    under jit, and its program has no zero-filled buffer of the output's shape (the buffer XLA
    placed anywhere); outside it, the loop is lax.map's."""
    chunks = jnp.asarray(np.random.default_rng(3).normal(size=(4, 8, 9, 9, 5)), jnp.float32)
    w = jnp.asarray(np.random.default_rng(4).normal(size=(45, 6)), jnp.float32)
    f = lambda c: ops._conv_one(c, w, 3)[0]
    with ops.low_memory():
        ours = jax.jit(lambda c: ops._map_chunks(f, c)).lower(chunks)
    theirs = jax.jit(lambda c: jax.lax.map(f, c)).lower(chunks)
    np.testing.assert_array_equal(ours.compile()(chunks), theirs.compile()(chunks))
    zeros = "f32[4,8,7,7,6]{4,3,2,1,0} broadcast(constant"
    assert zeros in theirs.as_text("hlo") and zeros not in ours.as_text("hlo")
    assert zeros in jax.jit(lambda c: ops._map_chunks(f, c)).lower(chunks).as_text("hlo")


@pytest.mark.parametrize("n,h,w,c,f", CONV_SHAPES[:3])
def test_matmul_conv_check_grads(n, h, w, c, f):
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(n, h, w, c)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(3, 3, c, f)) / np.sqrt(9 * c), jnp.float32)
    jax.test_util.check_grads(ops.conv_matmul, (x, kernel), order=1, modes=["rev"], atol=5e-2, rtol=5e-2)


@pytest.mark.parametrize("padding,k", [("VALID", 3), ("SAME", 3), ("VALID", 5), ("SAME", 5)])
def test_conv_module_matches_flax_conv(padding, k):
    x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 10, 10, 3)), jnp.float32)
    ours = ops.Conv(8, padding=padding, impl="matmul", kernel_size=k)
    theirs = nn.Conv(8, (k, k), padding=padding)
    params = theirs.init(jax.random.key(0), x)
    assert jax.tree.map(jnp.shape, ours.init(jax.random.key(0), x)) == jax.tree.map(jnp.shape, params)
    np.testing.assert_allclose(ours.apply(params, x), theirs.apply(params, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("features,channels", [([4, 8, 8], 1), ([32, 64, 64], 1), ([8, 16], 3)])
def test_whole_model_gradients_match_xla_under_jit(features, channels):
    """The custom convs inside a jitted model gradient: equal to XLA's, and finite."""
    from mtljax import models

    x = jnp.asarray(np.random.default_rng(3).random((50, 28, 28, channels)), jnp.float32)
    grads = []
    for impl in ("xla", "matmul"):
        model = models.build_model(models.default_config(features=features, dense=16, conv_impl=impl),
                                   {"digit": 10})
        params = model.init(jax.random.key(0), x[:1])["params"]
        loss = lambda p: jnp.sum(jax.nn.log_softmax(model.apply({"params": p}, x)["digit"])[:, 3])
        grads.append(jax.jit(jax.grad(loss))(params))
    for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1])):
        assert np.isfinite(np.asarray(b)).all()
        np.testing.assert_allclose(b, a, rtol=2e-3, atol=2e-3)


def test_max_pool_gradient_with_ties_equals_select_and_scatter():
    # ReLU outputs: many windows of equal zeros. The gradient goes to the first maximum, as XLA's.
    x = jnp.maximum(jnp.asarray(np.random.default_rng(4).integers(-3, 3, (2, 9, 9, 3)), jnp.float32), 0)
    ref = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))
    dy = jnp.asarray(np.random.default_rng(5).normal(size=ref(x).shape), jnp.float32)
    np.testing.assert_array_equal(jax.vjp(ops.max_pool_2x2, x)[1](dy)[0], jax.vjp(ref, x)[1](dy)[0])


FUSED_SHAPES = [(2, 28, 28, 1, 32), (2, 30, 30, 1, 32), (2, 28, 28, 3, 16), (2, 30, 30, 3, 32), (1, 7, 9, 4, 5)]


def _conv_relu_pool_apart(x, kernel, bias):
    return ops.max_pool_2x2(jax.nn.relu(ops.conv_xla(x, kernel) + bias))


@pytest.mark.parametrize("n,h,w,c,f,k", [(*shape, 3) for shape in FUSED_SHAPES] + [(2, 28, 28, 1, 24, 5), (1, 9, 10, 2, 5, 5)])
def test_fused_conv_relu_pool_equals_the_three_ops(n, h, w, c, f, k):
    """Every input shape the models feed it (28² VALID, 30² = 28² SAME-padded; 1 and 3 channels;
    3×3 and 5×5 kernels)."""
    rng = np.random.default_rng(6)
    x = jnp.asarray(rng.normal(size=(n, h, w, c)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(k, k, c, f)), jnp.float32)
    bias = jnp.asarray(rng.normal(size=(f,)), jnp.float32)
    want, want_vjp = jax.vjp(_conv_relu_pool_apart, x, kernel, bias)
    got, got_vjp = jax.vjp(ops.conv_relu_pool, x, kernel, bias)
    assert got.shape == want.shape == (n, (h - k + 1) // 2, (w - k + 1) // 2, f)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    dy = jnp.asarray(rng.normal(size=want.shape), jnp.float32)
    for a, b in zip(got_vjp(dy), want_vjp(dy)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)
    jax.test_util.check_grads(ops.conv_relu_pool, (x, kernel / np.sqrt(k * k * c), bias), order=1, modes=["rev"],
                              atol=5e-2, rtol=5e-2)


def test_fused_conv_relu_pool_with_ties_and_dead_units():
    """Integer inputs and kernels: equal maxima in a window and outputs exactly 0 after ReLU. The
    gradient goes to the first maximum, none through a unit whose maximum is <= 0, as apart."""
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.integers(0, 2, (2, 12, 12, 1)), jnp.float32)
    kernel = jnp.asarray(rng.integers(-1, 2, (3, 3, 1, 6)), jnp.float32)
    bias = jnp.asarray([0.0, -1.0, 1.0, 0.0, -2.0, 0.5], jnp.float32)
    want, want_vjp = jax.vjp(_conv_relu_pool_apart, x, kernel, bias)
    got, got_vjp = jax.vjp(ops.conv_relu_pool, x, kernel, bias)
    np.testing.assert_array_equal(got, want)
    dy = jnp.asarray(rng.normal(size=want.shape), jnp.float32)
    for a, b in zip(jax.jit(got_vjp)(dy), want_vjp(dy)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding,channels,size,k", [
    ("VALID", 1, 28, 3), ("SAME", 1, 28, 3), ("SAME", 3, 28, 3), ("VALID", 8, 28, 3), ("VALID", 32, 13, 3),
    ("SAME", 16, 7, 3), ("VALID", 1, 28, 5), ("VALID", 8, 13, 5)])
def test_conv_module_relu_pool_path(padding, channels, size, k):
    """Conv(relu_pool=True): fused for few channels, apart above FUSE_MAX_CHANNELS, the odd output
    row/column the pool drops not computed; same values, gradients and parameters as conv → ReLU
    → pool apart with XLA's convolution."""
    x = jnp.asarray(np.random.default_rng(8).normal(size=(2, size, size, channels)), jnp.float32)
    fused = ops.Conv(8, padding=padding, impl="matmul", relu_pool=True, kernel_size=k)
    params = fused.init(jax.random.key(0), x)
    plain = lambda v, x: ops.max_pool_2x2(nn.relu(ops.Conv(8, padding=padding, impl="xla", kernel_size=k).apply(v, x)))
    got, got_vjp = jax.vjp(fused.apply, params, x)
    want, want_vjp = jax.vjp(plain, params, x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    dy = jnp.asarray(np.random.default_rng(9).normal(size=want.shape), jnp.float32)
    for a, b in zip(jax.tree.leaves(got_vjp(dy)), jax.tree.leaves(want_vjp(dy))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, ops.Conv(8, padding=padding, kernel_size=k).init(
        jax.random.key(0), x))


@pytest.mark.parametrize("backend, expected", [("cpu", "matmul"), ("gpu", "matmul"), ("tpu", "xla")])
def test_auto_conv_impl_per_backend(monkeypatch, backend, expected):
    """'auto' picks the measured-faster path per backend; an explicit choice is kept."""
    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    assert ops.resolve_conv_impl("auto") == expected
    assert ops.resolve_conv_impl("xla") == "xla" and ops.resolve_conv_impl("matmul") == "matmul"
    assert ops.resolve_conv_impl("auto", gpu="xla") == {"gpu": "xla"}.get(backend, expected)


@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_backbones_pick_their_conv_path_and_chunk_only_on_cpu(monkeypatch, backend):
    """On GPUs VGG and the skip-CNN take XLA's convolution, cnn3 the matmul one; chunks only on CPUs."""
    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    x = jnp.zeros((8, 28, 28, 1))

    def program(model, **kw) -> str:  # The printed jaxpr of one forward pass.
        variables = model.init(jax.random.key(0), x, **kw)
        return str(jax.make_jaxpr(lambda v: model.apply(v, x, mutable=True, **kw))(variables))

    for name in ("vgg", "skipcnn"):
        assert ("conv_general_dilated" in program(BACKBONES[name](features=(8,)), train=False)) == (backend == "gpu")
    assert "conv_general_dilated" not in program(BACKBONES["cnn3"](features=(8, 8)), train=False)
    assert ("scan" in program(ops.Conv(8, impl="matmul", chunk=4))) == (backend == "cpu")
    # The trainer's view (its steps per call depend on it) agrees with the backbones'.
    for name, on_gpu in (("vgg", "xla"), ("skipcnn", "xla"), ("cnn3", "matmul")):
        cfg = config.resolve({"tasks": ["digit"], "model": {"name": name}})
        assert resolve_conv_impl(cfg) == (on_gpu if backend == "gpu" else "matmul")


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU compile options")
def test_conv_backends_benchmark_times_equal_computations(monkeypatch):
    """benchmarks/tables/conv_backends.py's layer programs (matmul conv in chunks, XLA's conv through
    YNNPACK, XLA's conv through Eigen) compute the same gradients, so its table compares speed alone."""
    from benchmarks.tables import conv_backends

    rng = np.random.default_rng(5)
    x, kernel, w = (jnp.asarray(rng.normal(size=s), jnp.float32) for s in ((8, 6, 6, 5), (3, 3, 5, 4), (8, 6, 6, 4)))
    for first in (True, False):
        grads = [jax.jit(conv_backends.layer_grad(conv, first), compiler_options=options)(x, kernel, w)
                 for conv, options in ((lambda x, k: ops.conv_matmul(x, k, 4), conv_backends.O1),
                                       (ops.conv_xla, conv_backends.O1), (ops.conv_xla, conv_backends.EIGEN))]
        assert len(grads[0]) == (1 if first else 2)
        for other in grads[1:]:
            for a, b in zip(other, grads[0]):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
