"""Layers written for speed on XLA:CPU, numerically equal to their plain Flax counterparts."""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax


def _windows(x: jnp.ndarray) -> jnp.ndarray:
    """N×H×W×C -> N×(H/2)×(W/2)×C×4: the 2×2 windows (an odd last row or column is dropped)."""
    n, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2, :].reshape(n, h // 2, 2, w // 2, 2, c)
    return x.transpose(0, 1, 3, 5, 2, 4).reshape(n, h // 2, w // 2, c, 4)


def max_pool_2x2(x: jnp.ndarray) -> jnp.ndarray:
    """2×2 max pooling with stride 2 (`_max_pool`); under `forward_mode`, the same values as plain
    JAX (the first maximum of each window gathered), which `jax.jvp` can differentiate."""
    if _TRACING["forward"]:
        windows = _windows(x)
        return jnp.take_along_axis(windows, jnp.argmax(windows, axis=-1)[..., None], axis=-1)[..., 0]
    return _max_pool(x)


# How the ops trace, set by the contexts below while a function is traced: "forward" (`forward_mode`)
# and "low_memory" (`low_memory`).
_TRACING = {"forward": False, "low_memory": False}


@contextlib.contextmanager
def _tracing(mode: str):
    """While tracing inside it, `_TRACING[mode]` is True."""
    before, _TRACING[mode] = _TRACING[mode], True
    try:
        yield
    finally:
        _TRACING[mode] = before


def forward_mode():
    """While tracing inside it, the custom-VJP ops (the matmul convolution, the pooling) trace as the
    plain JAX of their forward computations (the same values), which `jax.jvp` can differentiate:
    the Gramian engine's J·u (mtljax/mtl/gramian.py). The fused conv-ReLU-pool runs unfused."""
    return _tracing("forward")


def low_memory():
    """While tracing inside it, the chunked convolution's loops make their output buffers from their
    first chunk, not from zeros (`_map_chunks`): the Gramian engine's step (mtljax/mtl/gramian.py)."""
    return _tracing("low_memory")


@jax.custom_vjp
def _max_pool(x: jnp.ndarray) -> jnp.ndarray:
    """2×2 max pooling with stride 2 (VALID: an odd last row or column is dropped), NHWC.

    Equal to `nn.max_pool(x, (2, 2), strides=(2, 2))`. Its gradient goes to the first maximum of
    each window through a one-hot mask (as select-and-scatter does), but with elementwise ops
    only: XLA:CPU's select-and-scatter was the slowest op of the step. The mask comes from an
    argmax, not from `x == max(x)`: under jit XLA may recompute x in two fusions that round
    differently, and then no element equals the maximum (JAX's own max gradient then divides
    0 by 0 and returns NaN; this was seen with BatchNorm before the pooling).
    """
    return _windows(x).max(axis=-1)


def _pool_fwd(x):
    return _max_pool(x), x


def _pool_bwd(x, dy):
    n, h, w, c = x.shape
    windows = _windows(x)
    mask = jax.nn.one_hot(jnp.argmax(windows, axis=-1), 4, dtype=dy.dtype)
    dx = (mask * dy[..., None]).reshape(n, h // 2, w // 2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3)
    dx = dx.reshape(n, h // 2 * 2, w // 2 * 2, c)
    return (jnp.pad(dx, ((0, 0), (0, h % 2), (0, w % 2), (0, 0))),)


_max_pool.defvjp(_pool_fwd, _pool_bwd)


def _patches(x: jnp.ndarray, k: int) -> jnp.ndarray:
    """im2col for a k×k VALID convolution: N×H×W×C -> N×(H-k+1)×(W-k+1)×k²C, (row, col, channel) order."""
    ho, wo = x.shape[1] - k + 1, x.shape[2] - k + 1
    return jnp.concatenate([x[:, i:i + ho, j:j + wo, :] for i in range(k) for j in range(k)], axis=-1)


def _chunks(a: jnp.ndarray, chunk: int) -> jnp.ndarray | None:
    """`a` (N×...) as N/chunk × chunk × ..., or None unless 0 < chunk < N and chunk divides N."""
    n = a.shape[0]
    if not 0 < chunk < n or n % chunk:
        return None
    return a.reshape(n // chunk, chunk, *a.shape[1:])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_matmul(x: jnp.ndarray, kernel: jnp.ndarray, chunk: int = 0) -> jnp.ndarray:
    """k×k VALID convolution (NHWC, HWIO kernel, k×k×C×F) as one matmul over im2col patches.

    Forward and both gradients are single large matmuls: y = P·W, dW = Pᵀ·dY, dP = dY·Wᵀ, then
    dP is folded back onto the input (col2im) by k² shifted adds. On XLA:CPU large matmuls run
    nearer the machine's peak than XLA's own convolution (docs/performance.md). Equal to `lax.conv_general_dilated` up to float summation order.

    With `chunk` > 0 (dividing a larger batch) the batch runs in chunks of `chunk` examples, in a
    loop, forward and backward, the patches recomputed in the backward pass: a chunk's patches (k²×
    its input) stay in cache where the batch's fall out. The train step's micro-batches of 32 do
    this for most models already; BatchNorm models cannot be micro-batched (their statistics are
    the whole batch's), so their backbones chunk their convolutions instead (`conv_chunk`).
    """
    return _conv_fwd(x, kernel, chunk)[0]


def _map_chunks(f, chunks: jnp.ndarray) -> jnp.ndarray:
    """`lax.map(f, chunks)`, its stacked output made from the first chunk's (broadcast, then
    overwritten chunk by chunk in a loop), under `low_memory`; plain `lax.map` otherwise.

    `lax.map` starts its output as zeros, which depend on nothing: XLA creates such a buffer (and
    copies of it) wherever it likes, often long before the loop. The Gramian engine's column loop
    (mtljax/mtl/gramian.py) then carried the VGG's full-size convolution outputs through passes that
    did not use them. With chunk 0 run before the loop, the output buffer exists only once the input
    it depends on does. Not the default: a VGG run on augmented images traced this way rounded
    differently from the first epoch (chunk 0, outside the loop, compiles differently), and runs
    keep their bits.
    """
    if not _TRACING["low_memory"]:
        return lax.map(f, chunks)
    first = f(chunks[0])
    out = jnp.broadcast_to(first, (chunks.shape[0], *first.shape))

    def body(i, out):
        return lax.dynamic_update_index_in_dim(out, f(lax.dynamic_index_in_dim(chunks, i, keepdims=False)), i, 0)

    return lax.fori_loop(1, chunks.shape[0], body, out)


def _conv_one(x, w, k):
    """y = P·W for the patches of x (N×H×W×C), W being k²C×F."""
    patches = _patches(x, k)
    n, ho, wo, kc = patches.shape
    return (patches.reshape(-1, kc) @ w).reshape(n, ho, wo, -1), patches


def _conv_fwd(x, kernel, chunk):
    w, k = kernel.reshape(-1, kernel.shape[-1]), kernel.shape[0]
    chunks = _chunks(x, chunk)
    if chunks is None:
        y, patches = _conv_one(x, w, k)
        return y, (patches, None, kernel)
    y = _map_chunks(lambda c: _conv_one(c, w, k)[0], chunks)
    return y.reshape(x.shape[0], *y.shape[2:]), (None, x, kernel)


def _conv_grads(patches, dy, kernel):
    """(dx, dkernel) of one block of patches (N×H×W×k²C) given dy (N×H×W×F)."""
    n, ho, wo, kc = patches.shape
    k, f = kernel.shape[0], dy.shape[-1]
    dy2 = dy.reshape(-1, f)
    dkernel = (patches.reshape(-1, kc).T @ dy2).reshape(kernel.shape)
    dpatches = (dy2 @ kernel.reshape(kc, f).T).reshape(n, ho, wo, k * k, kc // (k * k))
    # col2im; when x needs no gradient (the first layer) XLA drops this as dead code.
    dx = sum(jnp.pad(dpatches[..., k * i + j, :], ((0, 0), (i, k - 1 - i), (j, k - 1 - j), (0, 0)))
             for i in range(k) for j in range(k))
    return dx, dkernel


def _conv_bwd(chunk, residuals, dy):
    patches, x, kernel = residuals
    if x is None:
        return _conv_grads(patches, dy, kernel)

    def one_chunk(dkernel, xs):
        dx, dk = _conv_grads(_patches(xs[0], kernel.shape[0]), xs[1], kernel)
        return dkernel + dk, dx

    dkernel, dx = lax.scan(one_chunk, jnp.zeros_like(kernel), (_chunks(x, chunk), _chunks(dy, chunk)))
    return dx.reshape(x.shape), dkernel


conv_matmul.defvjp(_conv_fwd, _conv_bwd)


@jax.custom_vjp
def _matmul_max_relu(s: jnp.ndarray, w4: jnp.ndarray, bias: jnp.ndarray) -> jnp.ndarray:
    """ReLU(max over the 4 of (s @ w4 + bias)): s is M×K, w4 is K×4×F; returns M×F."""
    return _mmr_fwd(s, w4, bias)[0]


def _mmr_fwd(s, w4, bias):
    k, _, f = w4.shape
    y = (s @ w4.reshape(k, 4 * f)).reshape(-1, 4, f) + bias
    m = y.max(axis=1)
    # The first maximum gets the gradient, as in max_pool_2x2; int8 keeps the residual small.
    return jnp.maximum(m, 0), (s, w4, jnp.argmax(y, axis=1).astype(jnp.int8), m > 0)


def _mmr_bwd(residuals, g):
    s, w4, first, active = residuals
    k, _, f = w4.shape
    g = jnp.where(active, g, 0)
    dy = jnp.where(first[:, None, :] == jnp.arange(4, dtype=jnp.int8)[None, :, None], g[:, None, :], 0)
    dy = dy.reshape(-1, 4 * f)
    return dy @ w4.reshape(k, 4 * f).T, (s.T @ dy).reshape(w4.shape), g.sum(0)


_matmul_max_relu.defvjp(_mmr_fwd, _mmr_bwd)


def conv_relu_pool(x: jnp.ndarray, kernel: jnp.ndarray, bias: jnp.ndarray) -> jnp.ndarray:
    """max_pool_2x2(ReLU(k×k VALID conv(x) + bias)) as one matmul, for inputs with few channels.

    Each pooled output (p, q) depends on the (k+1)×(k+1) input block at (2p, 2q): the block's
    (k+1)²·C values (a space-to-depth of x) times a (k+1)²C×4F matrix, whose 4 column blocks are
    the kernel placed at the 4 offsets of the pooling window, give the window's 4 conv outputs;
    their max is taken in the same pass. For k = 3 this does 16/9 the FLOPs of the convolution
    (36/25 for k = 5), but for the first layer (C = 1) the convolution is memory-bound, so one
    pass beats conv, ReLU and pool apart (the conv output is never re-laid-out for pooling). Equal to the three ops apart up to float summation order; the
    gradient goes to each window's first maximum.
    """
    n, h, w, c = x.shape
    k, b = kernel.shape[0], kernel.shape[0] + 1
    ho, wo = (h - k + 1) // 2, (w - k + 1) // 2
    blocks = jnp.concatenate([x[:, u:u + 2 * ho - 1:2, v:v + 2 * wo - 1:2, :] for u in range(b) for v in range(b)], -1)
    w4 = jnp.stack([jnp.pad(kernel, ((i, 1 - i), (j, 1 - j), (0, 0), (0, 0))).reshape(b * b * c, -1)
                    for i in range(2) for j in range(2)], 1)
    return _matmul_max_relu(blocks.reshape(-1, b * b * c), w4, bias).reshape(n, ho, wo, -1)


def conv_xla(x: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
    """k×k VALID convolution by XLA (cuDNN on GPUs)."""
    return lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def resolve_conv_impl(impl: str, gpu: str = "matmul") -> str:
    """"auto" -> "matmul" on CPUs, `gpu` on GPUs (the backbone's faster path there), else "xla".

    On an NVIDIA GPU the matmul convolution beat XLA's for the threshold model (cnn3) but not for
    VGG's and the skip-CNN's (chunked, see `Conv.chunk`): those backbones pass gpu="xla"
    (docs/accelerators.md). Other accelerators (TPUs) were not measured: "xla".
    """
    if impl == "auto":
        return {"cpu": "matmul", "gpu": gpu}.get(jax.default_backend(), "xla")
    return impl


def crop_for_pool(x: jnp.ndarray) -> jnp.ndarray:
    """The input of a k×k VALID conv (k odd) whose output a 2×2 pool follows, without the odd last
    row and column (the output has the input's parity): the pool drops the odd conv output row/column, and only those input pixels feed it.
    So it is not computed (11×11 -> 10×10 outputs: 17 % fewer FLOPs for the threshold model's
    second conv); the gradient of the cropped pixels was zero anyway."""
    return x[:, : x.shape[1] - x.shape[1] % 2, : x.shape[2] - x.shape[2] % 2, :]


FUSE_MAX_CHANNELS = 4  # Above this the 16/9 FLOPs of conv_relu_pool cost more than they save.


class Conv(nn.Module):
    """k×k convolution (k odd, 3 by default), stride 1, NHWC, parameters named and initialised as
    `nn.Conv`'s.

    Attributes:
      features: output channels.
      padding: "VALID" or "SAME" (zero padding of (k-1)/2).
      use_bias: add a bias.
      impl: "xla", "matmul" (`conv_matmul`) or "auto" (`resolve_conv_impl`).
      relu_pool: also apply ReLU and `max_pool_2x2`; on the matmul path, an input of at most
        `FUSE_MAX_CHANNELS` channels runs all three as one op (`conv_relu_pool`).
      chunk: on the matmul path on CPUs, > 0: the batch in chunks of this many examples
        (`conv_matmul`), a measure for the CPU's caches; other backends run the whole batch.
      kernel_size: k.
    """

    features: int
    padding: str = "VALID"
    use_bias: bool = True
    impl: str = "auto"
    relu_pool: bool = False
    chunk: int = 0
    kernel_size: int = 3

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        k = self.kernel_size
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, x.shape[-1], self.features))
        if self.padding == "SAME":
            x = jnp.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,)) if self.use_bias else None
        matmul = resolve_conv_impl(self.impl) == "matmul"
        if self.relu_pool and matmul and x.shape[-1] <= FUSE_MAX_CHANNELS and not _TRACING["forward"]:
            return conv_relu_pool(x, kernel, jnp.zeros((self.features,), x.dtype) if bias is None else bias)
        if self.relu_pool:
            x = crop_for_pool(x)
        chunk = self.chunk if jax.default_backend() == "cpu" else 0
        if matmul and _TRACING["forward"]:  # The same forward computation as plain JAX (for jax.jvp).
            y = _conv_fwd(x, kernel, chunk)[0]
        else:
            y = conv_matmul(x, kernel, chunk) if matmul else conv_xla(x, kernel)
        y = y if bias is None else y + bias
        return max_pool_2x2(nn.relu(y)) if self.relu_pool else y


class Dropout(nn.Module):
    """`nn.Dropout` (same key, same mask) whose rate may also be a traced value, so a sweep can
    vmap over it (mtljax/train/sweeps.py); flax's own tests `rate == 0` in Python, which a tracer refuses.

    Attributes:
      rate: probability of zeroing an element; a float or a traced scalar.
    """

    rate: Any

    @nn.compact
    def __call__(self, x: jnp.ndarray, deterministic: bool) -> jnp.ndarray:
        if deterministic or (isinstance(self.rate, (int, float)) and self.rate == 0):
            return x
        keep = 1.0 - self.rate
        mask = jax.random.bernoulli(self.make_rng("dropout"), p=keep, shape=x.shape)
        return jax.lax.select(mask, x / keep, jnp.zeros_like(x))
