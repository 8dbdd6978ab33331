"""Task-gradient conflict diagnostics of a task-gradient matrix G (T×P): the pairwise cosines of
the task gradients and their norms relative to the mean norm."""

from __future__ import annotations

import jax.numpy as jnp

from mtljax.mtl.solvers import EPS, gram


def conflict_stats(g: jnp.ndarray) -> dict[str, jnp.ndarray]:
    """The T×T cosine similarities of the rows of `g` and each row's norm over the mean norm."""
    norms = jnp.linalg.norm(g, axis=1)
    cos = gram(g) / (norms[:, None] * norms[None, :] + EPS)
    return {"cos": cos, "norm_ratio": norms / (jnp.mean(norms) + EPS)}
