"""ConicGrad (Hassanpour et al. 2025, "Fantastic multi-task gradient updates and how to find them
in a cone"): the update that most improves the worst task, confined to a cone around the mean
gradient."""

import jax
import jax.numpy as jnp

from mtljax.mtl.base import aggregator, from_gramian, register
from mtljax.mtl.solvers import EPS, min_norm_weights_exact, simplex_qp_exact
from mtljax.registry import Option


def edge_weights(m: jnp.ndarray, c: float, iters: int = 60) -> jnp.ndarray:
    """The w ∈ Δ minimising c·aᵀw + √(1−c²)·‖P g_w‖, a_t = g_tᵀu (u = g₀/‖g₀‖) and P the projection
    off u: the value of the best d on the cone's edge. With √x = min_λ x/(2λ) + λ/2 this is jointly
    convex in (w, λ): an exact QP on the simplex for each λ (`simplex_qp_exact`), and a
    golden-section search over log λ."""
    r2 = jnp.maximum(jnp.sum(m), EPS)
    a = jnp.sum(m, axis=1) / jnp.sqrt(r2)
    mp = m - jnp.outer(a, a)
    s = jnp.sqrt(1.0 - c**2)

    def at(log_lam):
        lam = jnp.exp(log_lam)
        w = simplex_qp_exact(s * mp / lam, c * a)
        return w, c * a @ w + s * (jnp.maximum(w @ mp @ w, 0.0) / (2 * lam) + lam / 2)

    ratio = 0.618034  # (√5 − 1)/2: each step keeps one inner point, so it evaluates one new one.

    def body(_, carry):
        lo, hi, x1, f1, x2, f2 = carry
        left = f1 < f2
        lo, hi = jnp.where(left, lo, x1), jnp.where(left, x2, hi)
        new = jnp.where(left, hi - ratio * (hi - lo), lo + ratio * (hi - lo))
        f_new = at(new)[1]
        x1, f1, x2, f2 = (jnp.where(left, new, x2), jnp.where(left, f_new, f2),
                          jnp.where(left, x1, new), jnp.where(left, f1, f_new))
        return lo, hi, x1, f1, x2, f2

    top = 0.5 * jnp.log(jnp.max(jnp.diag(m)) + EPS)
    # λ* = ‖P g_w*‖ ≤ max_t ‖g_t‖; below e⁻¹⁰ of that, float32 rounding of wᵀ(M − aaᵀ)w/λ is noise.
    lo, hi = top - 10.0, top + 1.0
    x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    lo, hi, *_ = jax.lax.fori_loop(0, iters, body, (lo, hi, x1, at(x1)[1], x2, at(x2)[1]))
    return at(0.5 * (lo + hi))[0]


def conicgrad_weights(m: jnp.ndarray, c: float = 0.5) -> jnp.ndarray:
    """d = argmax min_t g_tᵀd s.t. cos∠(d, g₀) ≥ c and ‖d‖ ≤ ‖g₀‖ (g₀ = Σ_t g_t, so agreeing
    rows give their sum). Without the cone the answer is MGDA's, d = ‖g₀‖·g_w/‖g_w‖ (w the
    min-norm point); if that lies in the cone it is the answer, else the cone binds and
    d = ‖g₀‖(c·u + √(1−c²)·v), v the unit part of g_w off u for w = `edge_weights` (d = 0 where
    even that best edge direction lowers some task's loss less than 0 does). Returns the weights of
    d on the rows of G: everything needs only the Gramian M."""
    r = jnp.sqrt(jnp.maximum(jnp.sum(m), EPS))
    cos = lambda w: jnp.sum(m @ w) / (r * jnp.sqrt(jnp.maximum(w @ m @ w, EPS)))
    w_free = min_norm_weights_exact(m)
    free = r / jnp.sqrt(jnp.maximum(w_free @ m @ w_free, EPS)) * w_free
    w = edge_weights(m, c)
    a = jnp.sum(m @ w) / r  # g_wᵀu.
    b = jnp.sqrt(jnp.maximum(w @ m @ w - a**2, 0.0))  # ‖P g_w‖.
    s = jnp.sqrt(1.0 - c**2)
    value = c * a + s * b
    # d = R·s/b · g_w + (c − s·a/b) · g₀, g₀ = 1ᵀG; where b = 0, d = R·u = g₀.
    edge = jnp.where(b > EPS * r, r * s / jnp.maximum(b, EPS) * w + (c - s * a / jnp.maximum(b, EPS)), 1.0)
    return jnp.where(cos(w_free) >= c, free, jnp.where(value > 0, edge, 0.0))


def conic_problem(options, tasks) -> str | None:
    return None if 0 <= options["c"] < 1 else f"c: the cone's cosine must be in [0, 1), got {options['c']!r}"


register("conicgrad", aggregator(from_gramian(lambda m, losses, state, ctx: (conicgrad_weights(m, ctx["options"]["c"]),
                                                                              state)),
                                 weighting=conicgrad_weights, check=conic_problem),
         {"c": Option(0.5, "ConicGrad's cone: cos∠(d, mean gradient) ≥ c", minimum=0)})
